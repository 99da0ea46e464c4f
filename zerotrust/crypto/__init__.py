"""Field-level encryption of JSON documents with Vault Transit (see docs/encryption.md)."""

from .ciphertext import FieldCiphertext
from .fields import FieldEncryptor, FieldSpec, field_specs
from .jsonpath import JsonPath, PathError
from .values import FieldInputError

__all__ = ["FieldCiphertext", "FieldEncryptor", "FieldInputError", "FieldSpec", "JsonPath", "PathError",
           "field_specs"]
