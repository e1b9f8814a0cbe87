"""Known XSS vectors for the export tests, and a record that carries them everywhere
untrusted text reaches an export.

Each vector calls `alert(N)` with its own N, so a browser that ran one says which. The
list gathers the usual HTML vectors (OWASP's filter-evasion cheat sheet: event handlers,
javascript:/vbscript:/data: URLs, SVG and MathML, entity and case tricks, broken
tags) and the Markdown ones (code spans over several lines, HTML blocks, autolinks,
reference links, nested and unbalanced fences)."""

from __future__ import annotations

import nbformat
from session_records import RecordBuilder, notebook

VECTORS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(2)>",
    "<svg onload=alert(3)>",
    "<svg><script>alert(4)</script></svg>",
    '<iframe src="javascript:alert(5)"></iframe>',
    "<body onload=alert(6)>",
    '<a href="javascript:alert(7)">x</a>',
    "[x](javascript:alert(8))",
    "[x](JaVaScRiPt:alert(9))",
    "[x](jav&#x61;script:alert(10))",
    "[x](javascript&#58;alert(11))",
    "[x](javascript\\:alert(12))",
    "[x]( javascript:alert(13))",
    "[x](vbscript:msgbox(14))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxNSk8L3NjcmlwdD4=)",
    "![x](javascript:alert(16))",
    '![x](x" onerror="alert(17))',
    "[ref]\n\n[ref]: javascript:alert(18)",
    "[ref][r]\n\n[r]: data:text/html,<script>alert(19)</script>",
    "<javascript:alert(20)>",
    '<http://x" onmouseover="alert(21)>',
    "`x\n<img src=x onerror=alert(22)>`",
    "``<script>alert(23)</script>`",
    "\\`<script>alert(24)</script>`",
    "``` `not a fence`\n<script>alert(25)</script>\n```",
    "- item\n  ```\n<script>alert(26)</script>\n```",
    "> ```\n> <script>alert(27)</script>",
    "~~~\n~~~\n<script>alert(28)</script>",
    "&lt;script&gt;alert(29)&lt;/script&gt;",
    "&#60;script&#62;alert(30)&#60;/script&#62;",
    "<details open ontoggle=alert(31)>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(32)>",
    '<div style="background:url(javascript:alert(33))">x</div>',
    '<object data="javascript:alert(34)"></object>',
    '<embed src="javascript:alert(35)">',
    '<form action="javascript:alert(36)"><button>go</button></form>',
    "<input autofocus onfocus=alert(37)>",
    '<meta http-equiv="refresh" content="0;url=javascript:alert(38)">',
    '<base href="javascript:alert(39)//">',
    "<style>@import 'javascript:alert(40)';</style>",
    "<video><source onerror=alert(41)></video>",
    "<audio src=x onerror=alert(42)>",
    "<marquee onstart=alert(43)>x</marquee>",
    "<IMG SRC=JaVaScRiPt:alert(44)>",
    '<IMG """><SCRIPT>alert(45)</SCRIPT>">',
    "<scr<script>ipt>alert(46)</scr</script>ipt>",
    '<!--<img src="--><img src=x onerror=alert(47)//">',
    '<a href="&#106;avascript:alert(48)">x</a>',
    '<svg><a xlink:href="javascript:alert(49)"><text x="20" y="20">x</text></a></svg>',
    "<svg><animate onbegin=alert(50) attributeName=x dur=1s>",
    '"><script>alert(51)</script>',
    "'><img src=x onerror=alert(52)>",
    "</textarea><script>alert(53)</script>",
    "</title><script>alert(54)</script>",
    "<x onclick=alert(55)>click",
    "[a](<javascript:alert(56)>)",
    "<https://example.com/<script>alert(57)</script>>",
    "<!-- --!><script>alert(58)</script> -->",
    "```html\n</code></pre><script>alert(59)</script>\n```",
    "$$<script>alert(60)</script>$$",
    "<img src=x:alert(61) onerror=eval(src)>",
    "| a | b |\n|---|---|\n| <script>alert(62)</script> | x |",
    "<table><tr><td background=\"javascript:alert(63)\">x</td></tr></table>",
    "<svg><foreignObject><iframe srcdoc=\"<script>alert(64)</script>\"></iframe></foreignObject></svg>",
]

# Outputs of a candidate's cell in every MIME type that can carry active content.
HOSTILE_OUTPUTS = [
    {"text/html": "<script>alert(101)</script><img src=x onerror=alert(102)>",
     "text/plain": "html output"},
    {"image/svg+xml": '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(103)"><script>'
                      "alert(104)</script></svg>", "text/plain": "svg output"},
    {"application/javascript": "alert(105)", "text/plain": "js output"},
    {"text/markdown": "<img src=x onerror=alert(106)>", "text/plain": "markdown output"},
    {"image/png": 'AAAA" onerror="alert(107)', "text/plain": "png output"},
    {"text/latex": "$<script>alert(108)</script>$", "text/plain": "latex output"},
]


def hostile_record() -> dict:
    """A session whose every untrusted field holds the vectors: candidate name, challenge
    title and text, both sides of the chat, the notebook's markdown, raw and code cells,
    their outputs, tags and metadata, and the grader's messages."""
    b = RecordBuilder()
    b.start(0)
    for i, vector in enumerate(VECTORS):
        b.ask(10 + i, vector, vector)  # the candidate asks it, the AI answers it
    outputs = [nbformat.from_dict({"output_type": "display_data", "metadata": {}, "data": d})
               for d in HOSTILE_OUTPUTS]
    outputs.append(nbformat.from_dict({"output_type": "stream", "name": "stdout",
                                       "text": "\n".join(VECTORS)}))
    outputs.append(nbformat.from_dict({"output_type": "error", "ename": VECTORS[0],
                                       "evalue": VECTORS[1], "traceback": VECTORS[:5]}))
    cells = [nbformat.v4.new_markdown_cell(v) for v in VECTORS]
    cells.append(nbformat.v4.new_raw_cell("<script>alert(109)</script>"))
    code = nbformat.v4.new_code_cell("print('hi')  # <script>alert(110)</script>",
                                     outputs=outputs)
    code.metadata["tags"] = ['x"><script>alert(111)</script>', "ok-tag"]
    cells.append(code)
    nb = notebook(*cells)
    nb["metadata"]["kernelspec"] = {"name": "python3", "display_name": VECTORS[1],
                                    "language": '"><script>alert(112)</script>'}
    b.submit(200, nb)
    record = b.build()
    joined = "\n".join(VECTORS)
    record["session"]["candidate_name"] = VECTORS[0] + " " + VECTORS[1]
    record["session"]["challenge"] = {"id": None, "title": VECTORS[2] + VECTORS[7],
                                      "statement": joined, "category": "custom"}
    record["challenge"] = dict(record["session"]["challenge"])
    record["grade"] = {"score": 0.5, "passed": 1, "total": 2, "duration_seconds": 1.0,
                       "error": joined,
                       "tests": [{"name": VECTORS[0], "visible": True, "passed": False,
                                  "message": joined[:500]},
                                 {"name": "test_ok", "visible": False, "passed": True,
                                  "message": VECTORS[3]}]}
    return record
