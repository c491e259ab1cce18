#!/usr/bin/python3
"""Reply sizes of a new user's analysis session, in bytes on the wire.

Runs the cases of issue 10 through the real server over stdio (each in one session, in order:
CSV in, clean, group, three plots, errors, a long print, ...) and prints, per call, the size of the
JSON-RPC response line, the text block(s), structuredContent and the images. A model pays for what
its client shows it (docs/REPLIES.md): Claude Code shows structuredContent of a successful call and
the text block of a failed one (the "CC text" column), and the images; "~tokens" estimates what
that costs (text at 4 bytes a token, images by Anthropic's width * height / 750 after its own
downscaling).

    MCPX_BIN=build/mcp-executor bench/reply_sizes.py [--json FILE]
"""
import base64
import json
import math
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "pylib"))
from mcp_client import McpClient  # noqa: E402

CSV_ROWS = 2000

CASES = [
    ("csv in", "import pandas as pd\ndf = pd.read_csv('sales.csv')\ndf.head()"),
    ("clean", "df = df.dropna()\ndf['amount'] = df['amount'].astype(float)\ndf.describe()"),
    ("group", "g = df.groupby('region')['amount'].agg(['sum', 'mean', 'count'])\ng"),
    ("plot: line", "import matplotlib.pyplot as plt\nplt.plot(df['amount'].values[:200])"),
    ("plot: title last", "df['amount'].hist()\nplt.title('amounts')"),
    ("plot: df.plot", "g['sum'].plot(kind='bar')"),
    ("display(fig)", "fig, ax = plt.subplots()\nax.plot([1, 2, 3])\ndisplay(fig)\nplt.close(fig)"),
    ("KeyError", "df['nope']"),
    ("SyntaxError", "x = (1,\ny = 2"),
    ("4000 px figure", "fig = plt.figure(figsize=(40, 40), dpi=100)\n"
                       "plt.plot(range(100))\nplt.show()"),
    ("ten figures", "for i in range(10):\n    plt.figure()\n    plt.plot([0, i])\nplt.show()"),
    ("progress bar", "import sys\nfor i in range(101):\n"
                     "    sys.stdout.write(f'\\rprogress {i:3d}%')\nprint()"),
    ("%matplotlib", "%matplotlib inline\nplt.plot([1, 2])\nplt.show()"),
    ("!ls", "!ls"),
    ("long print", "for i in range(10**6): print(i)"),
]


def make_csv():
    lines = ["region,amount,units"]
    for i in range(CSV_ROWS):
        amount = "" if i % 97 == 0 else f"{(i * 37) % 1000 / 10:.1f}"
        lines.append(f"{['north', 'south', 'east', 'west'][i % 4]},{amount},{i % 13}")
    return "\n".join(lines) + "\n"


def image_tokens(b64):
    """Anthropic's published estimate: an image past 1568 px on its long side or about 1.15
    megapixels is scaled down first; then it costs width * height / 750 tokens."""
    width, height = struct.unpack(">II", base64.b64decode(b64[:64])[16:24])
    scale = min(1.0, 1568 / max(width, height), math.sqrt(1.15e6 / (width * height)))
    return int(width * scale) * int(height * scale) // 750


def sizes(client, rid, result):
    text = sum(len(c["text"].encode()) for c in result["content"] if c["type"] == "text")
    images = [c for c in result["content"] if c["type"] == "image"]
    structured = len(json.dumps(result.get("structuredContent"), separators=(",", ":"),
                                ensure_ascii=False).encode())
    return {"wire": client.sizes[rid], "text": text, "structured": structured,
            "images": len(images), "image_b64": sum(len(c["data"]) for c in images),
            "image_tokens": sum(image_tokens(c["data"]) for c in images),
            "is_error": bool(result.get("isError"))}


def main():
    out = None
    if len(sys.argv) > 2 and sys.argv[1] == "--json":
        out = sys.argv[2]
    rows = []
    with McpClient() as c:
        c.call("write_file", {"path": "sales.csv", "content": make_csv()})
        for name, code in CASES:
            rid = c.start("tools/call", {"name": "execute_python",
                                         "arguments": {"code": code, "session": "bench"}})
            r = c.wait(rid, timeout=300)
            if "error" in r:
                raise SystemExit(f"{name}: JSON-RPC error {r['error']}")
            rows.append((name, sizes(c, rid, r["result"])))
    # What Claude Code passes to the model: structuredContent (JSON) on success, the text block
    # on error; images in both cases. Tokens: text at about 4 bytes a token, images as above.
    print(f"{'case':18} {'wire':>9} {'text':>8} {'struct':>8} {'img':>4} {'img b64':>9} "
          f"{'CC text':>8} {'~tokens':>8}")
    total = {"wire": 0, "seen": 0, "tokens": 0}
    for name, s in rows:
        seen = s["text"] if s["is_error"] else s["structured"]
        tokens = seen // 4 + s["image_tokens"]
        total["wire"] += s["wire"]
        total["seen"] += seen
        total["tokens"] += tokens
        print(f"{name:18} {s['wire']:9,} {s['text']:8,} {s['structured']:8,} {s['images']:4} "
              f"{s['image_b64']:9,} {seen:8,} {tokens:8,}")
    print(f"{'total':18} {total['wire']:9,} {'':8} {'':8} {'':4} {'':9} {total['seen']:8,} "
          f"{total['tokens']:8,}")
    if out:
        with open(out, "w") as f:
            json.dump({"rows": rows, "total": total}, f, indent=1)


if __name__ == "__main__":
    main()
