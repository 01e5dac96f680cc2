"""Property tests of the proxy's byte handling: SSE passthrough is byte-identical under any
chunking, and a chat's routing text is a suffix of the conversation within the limit."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from bandit_router.service.proxy import _split_events, _tail, _usage_in

_payload = st.dictionaries(
    st.sampled_from(["id", "model", "x", "é"]), st.text(max_size=12), max_size=3
)


@st.composite
def streams(draw):
    """SSE events (``\\n\\n`` or ``\\r\\n\\r\\n`` terminated) and cut points into their bytes."""
    events = []
    for obj in draw(st.lists(_payload, max_size=8)):
        sep = draw(st.sampled_from([b"\n\n", b"\r\n\r\n"]))
        events.append(b"data: " + json.dumps(obj, ensure_ascii=False).encode() + sep)
    if draw(st.booleans()):
        events.append(b"data: [DONE]\n\n")
    raw = b"".join(events)
    cuts = sorted(draw(st.lists(st.integers(0, len(raw)), max_size=10)))
    return events, raw, cuts


@given(streams())
def test_sse_events_pass_through_byte_identical_under_any_chunking(case):
    events, raw, cuts = case
    chunks = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    out, buf = [], b""
    for chunk in chunks:
        buf += chunk
        done, buf = _split_events(buf)
        out.extend(done)
    assert buf == b"" and out == events and b"".join(out) == raw


@given(st.integers(0, 10**6), st.integers(0, 10**6), st.booleans())
def test_usage_is_read_from_the_event_that_carries_it(n_in, n_out, with_choices):
    obj = {"choices": [{"delta": {}}] if with_choices else [],
           "usage": {"prompt_tokens": n_in, "completion_tokens": n_out}}  # fmt: skip
    usage, only = _usage_in(b"data: " + json.dumps(obj).encode() + b"\n\n")
    assert usage == obj["usage"] and only is (not with_choices)


@given(
    st.lists(
        st.tuples(st.sampled_from(["user", "assistant"]), st.text(min_size=1, max_size=40)),
        min_size=1,
        max_size=8,
    ),
    st.integers(1, 120),
)
def test_the_routing_tail_is_a_suffix_of_the_chat_within_the_limit(turns, limit):
    texts = [(r, t) for r, t in turns if t.strip()]
    kept = _tail(texts, limit)
    joined = "\n".join(m["content"] for m in kept)
    assert len(joined) <= limit
    assert "\n".join(t for _, t in texts).endswith(joined)
    if texts and len(texts[-1][1]) <= limit and texts[-1][1].strip():
        assert kept[-1]["content"] == texts[-1][1]  # the latest message is whole when it fits
