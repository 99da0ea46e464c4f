"""Policy engines behind :class:`zerotrust.interfaces.PolicyEngine`."""

from .builtin import BuiltinPolicyEngine, Rule, compile_glob

__all__ = ["BuiltinPolicyEngine", "Rule", "compile_glob"]
