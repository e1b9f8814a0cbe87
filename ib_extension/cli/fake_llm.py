"""The bundled offline demo model: an OpenAI-compatible chat server on loopback.

It lets Interview Buddy run and be tested with no provider and no internet. It
serves `GET /v1/models` and `POST /v1/chat/completions` (plain and streaming,
with `stream_options.include_usage`) in OpenAI's wire format, so the official
`openai` SDK talks to it unchanged. Every request needs `Authorization: Bearer
<anything>`; the key is never checked against anything, logged or echoed.

Replies are deterministic canned text. Each says first that it comes from the
offline demo model and is not a real AI, quotes the question, and shows a short
```python block. Usage is counted with `ib_extension.service.tokens`; `max_tokens` /
`max_completion_tokens` cut the reply at the cap with `finish_reason: "length"`
(when both are given, the smaller wins).

Test controls, written anywhere in the last user message:

    [[reply:TEXT]]    reply exactly TEXT (anything up to the first "]]")
    [[tokens:N]]      reply with about N tokens of filler text
    [[slow:TPS]]      stream this reply at TPS tokens per second
    [[skew:F]]        count tokens like a provider whose tokenizer gives F times as many:
                      usage reports F x tiktoken's counts, and the completion cap holds
                      in those units (so the reply is shorter)
    [[fault:429]]     answer 429 with Retry-After: 1 and an OpenAI error body
    [[fault:500]]     answer 500 with an OpenAI error body
    [[fault:timeout]] accept the request, then never answer
    [[fault:cut]]     start the reply, then drop the connection (no [DONE])

`[[reply:...]]` wins over `[[tokens:...]]`; a fault wins over both.

Run it with `python -m ib_extension.cli.fake_llm --port 8765` (or `ib fake-llm`);
`--latency` sets the seconds before the first token, `--tokens-per-second` the
streaming pace (0 = as fast as possible). In an asyncio program, use `start()`.
"""

from __future__ import annotations

import argparse
import asyncio
import codecs
import dataclasses
import hashlib
import json
import logging
import math
import re
import signal
import sys
import time
import uuid

import tornado.httpserver
import tornado.iostream
import tornado.netutil
import tornado.web

from ib_extension.service import tokens

log = logging.getLogger(__name__)

# The demo answers to any model name; these are the ones it advertises.
LISTED_MODELS = ("ib-demo", "gpt-4o-mini")
MAX_FILLER_TOKENS = 200_000
FAULTS = ("429", "500", "timeout", "cut")
CLIENT_GONE = (499, "Client Closed Request")  # nginx's status for this, shown in access logs

_CONTROL = re.compile(r"\[\[(reply|tokens|slow|fault|skew):(.*?)\]\]", re.DOTALL)


class ApiError(tornado.web.HTTPError):
    """An error answered with OpenAI's body shape: {"error": {message, type, param, code}}."""

    def __init__(self, status, message, *, type, code=None, param=None, headers=None):
        super().__init__(status)
        self.body = {"message": message, "type": type, "param": param, "code": code}
        self.headers = headers or {}


def _bad_request(message, param=None):
    return ApiError(400, message, type="invalid_request_error", param=param)


# ---------------------------------------------------------------- what to say


@dataclasses.dataclass(frozen=True)
class Controls:
    reply: str | None = None
    tokens: int | None = None
    slow: float | None = None
    fault: str | None = None
    skew: float | None = None


def parse_controls(text: str) -> Controls:
    """The test controls written in `text` (see the module docstring)."""
    found = dict(_CONTROL.findall(text))  # a control given twice: the last one wins
    controls = Controls(reply=found.get("reply"))
    if "tokens" in found:
        n = _parse_number(found["tokens"], int, "tokens", "a whole number of tokens")
        if not 1 <= n <= MAX_FILLER_TOKENS:
            raise _bad_request(f"[[tokens:N]] needs 1 <= N <= {MAX_FILLER_TOKENS}, got {n}")
        controls = dataclasses.replace(controls, tokens=n)
    if "slow" in found:
        tps = _parse_number(found["slow"], float, "slow", "tokens per second")
        if not 0 < tps < float("inf"):
            raise _bad_request(f"[[slow:TPS]] needs a finite TPS > 0, got {found['slow']!r}")
        controls = dataclasses.replace(controls, slow=tps)
    if "skew" in found:
        skew = _parse_number(found["skew"], float, "skew", "a factor")
        if not 0.1 <= skew <= 10:
            raise _bad_request(f"[[skew:F]] needs 0.1 <= F <= 10, got {found['skew']!r}")
        controls = dataclasses.replace(controls, skew=skew)
    if "fault" in found:
        fault = found["fault"].strip()
        if fault not in FAULTS:
            raise _bad_request(f"unknown [[fault:{fault}]]; known faults: {', '.join(FAULTS)}")
        controls = dataclasses.replace(controls, fault=fault)
    return controls


def _parse_number(raw, kind, name, meaning):
    try:
        return kind(raw.strip())
    except ValueError:
        raise _bad_request(f"[[{name}:{raw}]] needs {meaning}") from None


# Canned advice picked by keywords in the question: (keywords, advice, code).
_TOPICS = [
    (
        ("sort", "order", "rank"),
        "Python's `sorted()` takes a `key` function, so you rarely need to write a sort yourself.",
        'people = [("ada", 36), ("alan", 41), ("grace", 85)]\n'
        "by_age = sorted(people, key=lambda person: person[1], reverse=True)\n"
        "print(by_age[0])  # ('grace', 85)\n",
    ),
    (
        ("test", "pytest", "assert"),
        "A small pytest test per behaviour keeps failures easy to read.",
        "def add(a, b):\n    return a + b\n\n\n"
        "def test_add_handles_negatives():\n    assert add(-2, 5) == 3\n",
    ),
    (
        ("error", "exception", "bug", "traceback", "fail"),
        "Read the last line of the traceback first, then reproduce the failure with the "
        "smallest input you can.",
        "try:\n    value = int(user_input)\nexcept ValueError as e:\n"
        '    print(f"not a number: {e}")\n',
    ),
    (
        ("fast", "slow", "complexity", "performance", "big o", "optimi"),
        "Membership tests on a `set` or `dict` are O(1) on average, on a `list` they are O(n).",
        "seen = set()\nfor item in items:\n    if item in seen:\n"
        '        print("duplicate:", item)\n    seen.add(item)\n',
    ),
    (
        ("string", "palindrome", "reverse", "text"),
        "Slicing with a step of -1 reverses any sequence, strings included.",
        "def is_palindrome(s: str) -> bool:\n"
        '    cleaned = "".join(ch.lower() for ch in s if ch.isalnum())\n'
        "    return cleaned == cleaned[::-1]\n",
    ),
]
_GENERAL = [
    (
        "Start with the simplest version that works on the examples, then improve it.",
        "def solve(data):\n    result = []\n    for item in data:\n"
        "        result.append(item)\n    return result\n",
    ),
    (
        "Write down the input and output for one small example before writing code.",
        'def main():\n    example = [3, 1, 2]\n    print("input:", example)\n\n\nmain()\n',
    ),
]


def compose_reply(question: str) -> str:
    """The canned, clearly labelled answer to `question` (same question, same reply)."""
    asked = " ".join(_CONTROL.sub(" ", question).split())
    if len(asked) > 100:
        asked = asked[:99] + "…"
    advice, code = _advice_for(asked)
    opening = f"You asked: “{asked}”" if asked else "Your last message had no text I could read."
    return (
        "*Offline demo model: this is canned text, not a reply from a real AI.*\n\n"
        f"{opening}\n\n{advice}\n\n```python\n{code}```\n\n"
        "Connect a real model provider to get genuine help."
    )


def _advice_for(question: str) -> tuple[str, str]:
    lowered = question.lower()
    for keywords, advice, code in _TOPICS:
        if any(word in lowered for word in keywords):
            return advice, code
    # No topic matched: a stable hash (not hash(), which varies per process) picks one.
    return _GENERAL[hashlib.sha256(question.encode()).digest()[0] % len(_GENERAL)]


def filler_reply(n_tokens: int, model: str) -> str:
    """About `n_tokens` tokens of labelled filler, for budget and pacing tests."""
    label = f"Offline demo model: filler reply of about {n_tokens} tokens. "
    sentence = "The quick brown fox jumps over the lazy dog while the interview continues. "
    enc = tokens.encoding_for(model)
    # Repeated, a sentence merges into fewer tokens than alone: twice as many is plenty.
    repeats = 2 * n_tokens // len(enc.encode_ordinary(sentence)) + 1
    ids = enc.encode_ordinary(label + sentence * repeats)[:n_tokens]
    return enc.decode(ids)


def split_into_tokens(text: str, model: str, cap: int | None) -> tuple[list[str], str]:
    """Split `text` into per-token pieces to stream, cut at `cap` tokens.

    Returns the pieces and the finish reason ("stop", or "length" when cut).
    A token can end inside a multi-byte character; such bytes wait for the next
    token, so every piece is valid text.
    """
    enc = tokens.encoding_for(model)
    ids = enc.encode_ordinary(text)
    finish = "stop"
    if cap is not None and len(ids) > cap:
        ids, finish = ids[:cap], "length"
    decoder = codecs.getincrementaldecoder("utf-8")()
    pieces = []
    for token in ids:
        piece = decoder.decode(enc.decode_single_token_bytes(token))
        if piece:
            pieces.append(piece)
    # A cut text can re-encode into more tokens than were cut; keep it within the cap.
    while cap is not None and pieces and tokens.count_tokens("".join(pieces), model) > cap:
        pieces.pop()
    return pieces, finish


# ---------------------------------------------------------------- HTTP


@dataclasses.dataclass(frozen=True)
class _Reply:
    envelope: dict  # id, created, model, system_fingerprint: shared by every chunk
    pieces: list[str]  # the reply's text, one piece per token
    finish: str
    usage: dict


@dataclasses.dataclass(frozen=True)
class Pacing:
    latency: float = 0.0  # seconds before the first token
    tokens_per_second: float = 0.0  # 0 = as fast as possible


class _OpenAIHandler(tornado.web.RequestHandler):
    def prepare(self):
        scheme, _, key = self.request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise ApiError(
                401,
                "Missing bearer authentication: send 'Authorization: Bearer <any key>' "
                "(the offline demo model accepts any key).",
                type="invalid_request_error",
                code="invalid_api_key",
            )

    def write_error(self, status_code, **kwargs):
        error = kwargs.get("exc_info", (None, None))[1]
        if isinstance(error, ApiError):
            body = error.body
            for name, value in error.headers.items():
                self.set_header(name, value)
        else:
            body = {"message": self._reason, "type": "server_error", "param": None, "code": None}
        self.finish({"error": body})

    def log_exception(self, typ, value, tb):
        if not isinstance(value, ApiError):  # ApiErrors are answers, not failures
            super().log_exception(typ, value, tb)


class ModelsHandler(_OpenAIHandler):
    def get(self):
        models = [
            {"id": name, "object": "model", "created": 0, "owned_by": "interview-buddy"}
            for name in LISTED_MODELS
        ]
        self.finish({"object": "list", "data": models})


class ChatCompletionsHandler(_OpenAIHandler):
    def initialize(self, pacing: Pacing):
        self.pacing = pacing
        self.client_gone = asyncio.Event()

    def on_connection_close(self):
        self.client_gone.set()

    async def post(self):
        request = self._parse_request()
        model = request["model"]
        question = _last_user_text(request["messages"])
        controls = parse_controls(question)
        if controls.fault in ("429", "500"):
            raise _injected_fault(controls.fault)
        if controls.fault == "timeout":
            await self.client_gone.wait()  # never answer; stop when the client gives up
            self.set_status(*CLIENT_GONE)  # for the access log
            return
        if controls.reply is not None:
            text = controls.reply
        elif controls.tokens is not None:
            text = filler_reply(controls.tokens, model)
        else:
            text = compose_reply(question)
        skew = controls.skew or 1.0
        cap = _completion_cap(request)
        pieces, finish = split_into_tokens(text, model,
                                           None if cap is None else math.floor(cap / skew))
        prompt_tokens = math.ceil(skew * tokens.count_message_tokens(request["messages"], model))
        completion_tokens = math.ceil(skew * tokens.count_tokens("".join(pieces), model))
        reply = _Reply(
            envelope={
                "id": f"chatcmpl-demo-{uuid.uuid4().hex[:24]}",
                "created": int(time.time()),
                "model": model,
                "system_fingerprint": None,
            },
            pieces=pieces,
            finish=finish,
            usage={
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        )
        tps = controls.slow or self.pacing.tokens_per_second
        cut = controls.fault == "cut"
        if request.get("stream"):
            include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
            await self._stream(reply, tps, cut, include_usage)
        else:
            await self._answer(reply, tps, cut)

    def _parse_request(self):
        try:
            request = json.loads(self.request.body or b"null")
        except ValueError as e:
            raise _bad_request(f"request body is not valid JSON: {e}") from None
        if not isinstance(request, dict):
            raise _bad_request("request body must be a JSON object")
        if not isinstance(request.get("model"), str) or not request["model"]:
            raise _bad_request("'model' is required and must be a string", "model")
        messages = request.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _bad_request("'messages' must be a non-empty array", "messages")
        try:
            tokens.count_message_tokens(messages, request["model"])
        except TypeError as e:
            raise _bad_request(f"invalid 'messages': {e}", "messages") from None
        if request.get("n") not in (None, 1):
            raise _bad_request("the offline demo model only supports n=1", "n")
        return request

    async def _answer(self, reply, tps, cut):
        # Without streaming, the whole generation time passes before the answer.
        await self._sleep(self.pacing.latency + (len(reply.pieces) / tps if tps else 0))
        if self.client_gone.is_set():
            self.set_status(*CLIENT_GONE)
            return
        if cut:
            self.request.connection.close()
            return
        message = {"role": "assistant", "content": "".join(reply.pieces), "refusal": None}
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": reply.finish}
        self.finish(
            {
                **reply.envelope,
                "object": "chat.completion",
                "choices": [choice],
                "usage": reply.usage,
            }
        )

    async def _stream(self, reply, tps, cut, include_usage):
        def chunk(choices, usage=None):
            body = {**reply.envelope, "object": "chat.completion.chunk", "choices": choices}
            if include_usage:  # OpenAI sends usage: null until the last chunk
                body["usage"] = usage
            return body

        def delta(content, finish=None):
            return [{"index": 0, "delta": content, "logprobs": None, "finish_reason": finish}]

        await self._sleep(self.pacing.latency)
        self.set_header("Content-Type", "text/event-stream; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        # A cut reply stops after half its tokens (at least one), with no end marker.
        pieces = reply.pieces[: max(1, len(reply.pieces) // 2)] if cut else reply.pieces
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            await self._send(chunk(delta({"role": "assistant", "content": "", "refusal": None})))
            for i, piece in enumerate(pieces):
                if tps:  # pace against the start time so delays do not add up
                    await self._sleep(started + i / tps - loop.time())
                await self._send(chunk(delta({"content": piece})))
            if cut:
                self.request.connection.close()
                return
            await self._send(chunk(delta({}, reply.finish)))
            if include_usage:
                await self._send(chunk([], reply.usage))
            await self._send("[DONE]")
        except tornado.iostream.StreamClosedError:
            self.set_status(*CLIENT_GONE)  # the client went away; nothing left to tell it
            return
        self.finish()

    async def _send(self, event):
        if self.client_gone.is_set():
            raise tornado.iostream.StreamClosedError()
        data = event if isinstance(event, str) else json.dumps(event, separators=(",", ":"))
        self.write(f"data: {data}\n\n")
        await self.flush()

    async def _sleep(self, seconds):
        if seconds > 0:
            await asyncio.sleep(seconds)


def _last_user_text(messages):
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return "".join(p.get("text", "") for p in content if p.get("type") == "text")
            return content or ""
    return ""


def _completion_cap(request):
    caps = []
    for field in ("max_tokens", "max_completion_tokens"):
        value = request.get(field)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise _bad_request(f"'{field}' must be a positive integer, got {value!r}", field)
        caps.append(value)
    return min(caps) if caps else None


def _injected_fault(fault):
    if fault == "429":
        return ApiError(
            429,
            "Rate limit reached (injected by [[fault:429]] in the offline demo model). "
            "Please try again in 1s.",
            type="requests",
            code="rate_limit_exceeded",
            headers={"Retry-After": "1"},
        )
    return ApiError(
        500,
        "The server had an error while processing your request "
        "(injected by [[fault:500]] in the offline demo model).",
        type="server_error",
    )


class NotFoundHandler(_OpenAIHandler):
    def prepare(self):
        raise ApiError(
            404,
            f"Unknown request URL: {self.request.method} {self.request.path}. "
            "The offline demo model serves GET /v1/models and POST /v1/chat/completions.",
            type="invalid_request_error",
            code="unknown_url",
        )


# ---------------------------------------------------------------- entry points


def make_app(latency: float = 0.0, tokens_per_second: float = 0.0) -> tornado.web.Application:
    """The demo model's tornado application (API under /v1)."""
    if latency < 0:
        raise ValueError(f"latency must be >= 0 seconds, got {latency}")
    if tokens_per_second < 0:
        raise ValueError(f"tokens_per_second must be >= 0 (0 = unpaced), got {tokens_per_second}")
    pacing = Pacing(latency=latency, tokens_per_second=tokens_per_second)
    return tornado.web.Application(
        [
            (r"/v1/models", ModelsHandler),
            (r"/v1/chat/completions", ChatCompletionsHandler, {"pacing": pacing}),
        ],
        default_handler_class=NotFoundHandler,
    )


async def start(port: int = 0, host: str = "127.0.0.1", **opts):
    """Serve the demo model in the running asyncio loop. Returns (server, port);
    port 0 picks a free port. Stop with `server.stop()`."""
    sockets = tornado.netutil.bind_sockets(port, host)
    server = tornado.httpserver.HTTPServer(make_app(**opts))
    server.add_sockets(sockets)
    return server, sockets[0].getsockname()[1]


def _non_negative(raw):
    value = float(raw)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {raw}")
    return value


def _parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="ib fake-llm",
        description="Serve the offline demo model: an OpenAI-compatible chat API with canned "
        "replies, for demos and tests without a real provider.",
    )
    parser.add_argument("--port", type=int, default=8765, help="port to listen on (0 = any free)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--latency", type=_non_negative, default=0.0, help="seconds before the first token"
    )
    parser.add_argument(
        "--tokens-per-second",
        type=_non_negative,
        default=0.0,
        help="streaming pace (0 = as fast as possible)",
    )
    return parser.parse_args(argv)


async def _serve_until_signalled(args):
    for name in ("gpt-4o", "gpt-4"):  # load both encodings now, not on the first request
        tokens.encoding_for(name)
    try:
        server, port = await start(
            port=args.port,
            host=args.host,
            latency=args.latency,
            tokens_per_second=args.tokens_per_second,
        )
    except OSError as e:
        print(
            f"ib fake-llm: cannot listen on {args.host}:{args.port}: {e.strerror}", file=sys.stderr
        )
        return 1
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"Offline demo model listening on http://{host}:{port}/v1", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        server.stop()
        await server.close_all_connections()
    return 0


def main(argv: list[str] | None = None) -> int:
    """CLI: serve the demo model until SIGINT/SIGTERM."""
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    return asyncio.run(_serve_until_signalled(args))


if __name__ == "__main__":
    sys.exit(main())
