import io
import json
import time

from zerotrust.audit import JsonLinesSink, MemorySink


def record(**kw):
    return {"decision_id": "d1", "allow": True, "status": 200, "reason": "allow", "latency_us": 1.5, **kw}


def test_write_through_when_interval_is_zero():
    buf = io.BytesIO()
    sink = JsonLinesSink(buf, flush_interval=0)
    sink.emit(record())
    sink.emit(record(decision_id="d2", allow=False, status=401))
    lines = buf.getvalue().decode().splitlines()
    assert [json.loads(x)["decision_id"] for x in lines] == ["d1", "d2"]


def test_buffered_lines_are_flushed_by_the_background_thread(tmp_path):
    path = tmp_path / "audit.jsonl"
    sink = JsonLinesSink.from_output(str(path), flush_interval=0.05)
    sink.emit(record())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not path.read_bytes():
        time.sleep(0.01)
    assert json.loads(path.read_text())["decision_id"] == "d1"


def test_denials_only():
    buf = io.BytesIO()
    sink = JsonLinesSink(buf, include_allows=False, flush_interval=0)
    sink.emit(record())
    sink.emit(record(allow=False))
    assert len(buf.getvalue().splitlines()) == 1


def test_non_json_values_do_not_break_the_log():
    buf = io.BytesIO()
    JsonLinesSink(buf, flush_interval=0).emit(record(extra=object()))
    assert json.loads(buf.getvalue())["decision_id"] == "d1"


def test_none_output_and_text_streams(capsys):
    assert JsonLinesSink.from_output("none") is None
    sink = JsonLinesSink.from_output("stdout")
    sink.emit(record())
    sink.flush()
    assert '"decision_id":"d1"' in capsys.readouterr().out


def test_memory_sink_is_bounded():
    m = MemorySink(limit=3)
    for i in range(5):
        m.emit(record(decision_id=str(i)))
    assert [r["decision_id"] for r in m.records] == ["2", "3", "4"]


def test_dropped_sinks_do_not_leak_flusher_threads():
    import gc
    import threading

    def flushers():
        return sum(t.name == "zerotrust-audit-flush" and t.is_alive() for t in threading.enumerate())

    before = flushers()
    for _ in range(5):
        JsonLinesSink(io.BytesIO(), flush_interval=0.02)
    gc.collect()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and flushers() > before:
        time.sleep(0.02)
    assert flushers() <= before
