#!/usr/bin/env python3
"""Writes the seed corpora of fuzz/corpus/ that need no key (signed seeds come from the
targets themselves: see README.md). Run from fuzz/: python3 make_corpus.py"""
import json, os, struct, zlib

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.join(HERE, "..", "crates", "portcullis", "tests")
CORPUS = os.path.join(HERE, "corpus")
PY_DATA = "/root/.pyenv/versions/3.13.0/lib/python3.13/test/test_email/data"
EXIF = "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/kamadak-exif-0.6.2/tests"


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# session_cookie: shapes of the cookie header (signed ones: written by the target).
for i, v in enumerate([
    "session=", "session=abc", "session=a.b.c", "a=1; session=x.y.z; b=2",
    "__Host-session=AAAA.kid.BBBB", "session=\"quoted\"", "session=%41%42.x.y",
    "session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.k1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
]):
    put("session_cookie", f"shape-{i}", v)

# csrf_token: mode byte (0 header, 1 urlencoded, 2 multipart, 3 own content type).
B = "----fuzzBoundary7MA4YWxk"
multipart = (
    f"--{B}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\nTOKEN\r\n"
    f"--{B}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n"
    f"Content-Type: text/plain\r\n\r\nhello\r\n--{B}--\r\n"
)
file_first = (
    f"--{B}\r\nContent-Disposition: form-data; name=\"csrf_token\"; filename=\"t\"\r\n\r\nTOKEN\r\n"
    f"--{B}--\r\n"
)
for i, v in enumerate([
    b"\x00TOKEN", b"\x00garbage", b"\x01csrf_token=TOKEN&title=hi", b"\x01title=a&csrf_token=TOKEN",
    b"\x01csrf_token=TOKEN&csrf_token=x", b"\x01csrf_token=%54OKEN",
    b"\x02" + multipart.encode(), b"\x02" + file_first.encode(),
    b"\x03multipart/form-data; boundary=abc\n--abc\r\nContent-Disposition: form-data; name=csrf_token\r\n\r\nTOKEN\r\n--abc--\r\n",
    b"\x03multipart/form-data; boundary=\"q b\"\n--q b\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\nTOKEN\r\n--q b--",
    b"\x03text/plain\ncsrf_token=TOKEN", b"\x03application/json\n{\"csrf_token\":\"TOKEN\"}",
    b"\x03application/x-www-form-urlencoded; charset=utf-8\ncsrf_token=TOKEN",
]):
    put("csrf_token", f"seed-{i}", v)

# username_extraction: content type, newline, body.
for i, v in enumerate([
    "application/x-www-form-urlencoded\nusername=alice&password=secret",
    "application/x-www-form-urlencoded\nusername=alice&username=bob",
    "application/x-www-form-urlencoded; charset=utf-8\nusername=%E2%84%AAevin&password=x",
    "application/x-www-form-urlencodedx\nusername=alice",
    "application/json\n{\"username\":\"alice\",\"password\":\"x\"}",
    "application/json\n{\"username\":\"alice\",\"username\":\"bob\"}",
    "application/json; charset=utf-8\n[\"alice\",\"pw\"]",
    "application/vnd.api+json\n{\"username\":\"Alice \"}",
    "application/json\n{\"user\\u006eame\":\"alice\"}",
    "text/plain\nusername=alice",
    "multipart/form-data; boundary=x\n--x\r\nContent-Disposition: form-data; name=username\r\n\r\nalice\r\n--x--",
]):
    put("username_extraction", f"seed-{i}", v)

# forwarded_headers: mode byte (0 X-Forwarded, 1 Forwarded, +2 trust forwarded host), header lines.
for i, v in enumerate([
    b"\x00X-Forwarded-For: 198.51.100.7, 10.0.0.2\nX-Forwarded-Proto: https\nX-Forwarded-Host: example.com\nHost: internal",
    b"\x02X-Forwarded-For: 2001:db8::1\nX-Forwarded-Proto: https\nX-Forwarded-Host: example.com:8443",
    b"\x00X-Forwarded-For: 198.51.100.7\nX-Forwarded-For: 10.1.1.1, 10.2.2.2",
    b"\x01Forwarded: for=198.51.100.7;proto=https;host=example.com, for=10.0.0.2",
    b"\x03Forwarded: for=\"[2001:db8:cafe::17]:4711\";proto=https;host=\"example.com:443\"",
    b"\x01Forwarded: For=\"_gazonk\", for=unknown;by=10.0.0.1",
    b"\x03Forwarded: for=192.0.2.60;proto=http;by=203.0.113.43;host=a.example\nForwarded: for=10.0.0.9",
    b"\x01Forwarded: for=\"198.51.100.7:80\";proto=HTTPS",
    b"\x02X-Forwarded-Host: evil.example/path\nHost: good.example",
]):
    put("forwarded_headers", f"seed-{i}", v)

# csp_report: content type, newline, body.
legacy = {"csp-report": {"document-uri": "https://example.com/page", "referrer": "",
                         "violated-directive": "script-src-elem", "effective-directive": "script-src-elem",
                         "original-policy": "default-src 'self'; report-uri /csp-report",
                         "blocked-uri": "https://evil.example/x.js", "status-code": 200,
                         "source-file": "https://example.com/page", "line-number": 3, "column-number": 7}}
modern = [{"type": "csp-violation", "age": 10, "url": "https://example.com/", "user_agent": "Mozilla/5.0",
           "body": {"documentURL": "https://example.com/", "blockedURL": "inline",
                    "effectiveDirective": "script-src-elem", "originalPolicy": "script-src 'nonce-abc'",
                    "disposition": "enforce", "sample": "alert(1)", "statusCode": 200,
                    "lineNumber": 1, "columnNumber": 2}}] * 4
for i, v in enumerate([
    "application/csp-report\n" + json.dumps(legacy),
    "application/reports+json\n" + json.dumps(modern),
    "application/json\n" + json.dumps(legacy),
    "application/reports+json\n[]",
    "application/csp-report\n{\"csp-report\":null}",
    "text/plain\nhello",
]):
    put("csp_report", f"seed-{i}", v)

# jwt_decode: malformed shapes (signed ones: written by the target).
for i, v in enumerate([
    "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiI0MiJ9.",
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI0MiJ9.c2ln",
    "eyJhbGciOiJIUzI1NiIsImtpZCI6IngifQ.e30.AAAA",
    "a.b.c", "..", "eyJhbGciOiJSUzI1NiIsImtpZCI6IngifQ.e30.AAAA",
]):
    put("jwt_decode", f"shape-{i}", v)

# filenames: max_chars - 1, then the name.
for i, (m, name) in enumerate([
    (99, "My cool movie.mov"), (99, "../../etc/passwd"), (99, "..\\..\\windows\\win.ini"),
    (99, "CON.txt"), (99, "com1"), (99, "LpT9.tar.gz"), (4, "CONSOLE.a"), (7, "AUXILIARY.txt"),
    (19, "a" * 300 + ".png"), (99, "i contain cool \u00fcml\u00e4uts.txt"), (99, "a\u202egnp.exe"),
    (99, "\uff23\uff2f\uff2e.txt"), (2, "._._x_._."), (99, "\u0000\u001f\u001c name .txt"),
]):
    put("filenames", f"seed-{i}", bytes([m]) + name.encode())

# upload_check: small real files of every accepted kind.
def png(extra_chunks=b""):
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    ihdr = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    raw = b"".join(b"\x00" + b"\xff\x00\x00" * 2 for _ in range(2))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra_chunks
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
put("upload_check", "plain.png", png())
put("upload_check", "text.png", png(chunk(b"tEXt", b"Comment\x00made at home") + chunk(b"eXIf", b"MM\x00*\x00\x00\x00\x08\x00\x00")))
for name, path in [("python.jpg", f"{PY_DATA}/python.jpg"), ("python.gif", f"{PY_DATA}/python.gif"),
                   ("python.webp", f"{PY_DATA}/python.webp"), ("exif.jpg", f"{EXIF}/exif.jpg"),
                   ("exif.webp", f"{EXIF}/exif.webp"), ("exif.png", f"{EXIF}/exif.png")]:
    if os.path.exists(path):
        put("upload_check", name, open(path, "rb").read())
put("upload_check", "comment.gif",
    b"GIF89a\x01\0\x01\0\0\0\0\x21\xfe\x04home\0,\0\0\0\0\x01\0\x01\0\0\x02\x02D\x01\0;")
pdf = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
       b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
       b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 10 10]>>endobj\n"
       b"4 0 obj<</Length 9/Filter/FlateDecode>>stream\n" + zlib.compress(b"0 0 m 1 1 l")[:9] +
       b"\nendstream endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")
put("upload_check", "tiny.pdf", pdf)
put("upload_check", "js.pdf", b"%PDF-1.7\n1 0 obj<</OpenAction<</S/JavaScript/JS(app.alert(1))>>>>endobj\n%%EOF\n")

# password_hash_strings: real werkzeug and bcrypt hashes (the fixtures), cheap shapes.
vectors = json.load(open(os.path.join(TESTS, "fixtures", "password_vectors.json")))
seen = set()
for v in vectors:
    h = v["hash"]
    kind = h.split("$")[0] if not h.startswith("$") else h[:4]
    if kind in seen:
        continue
    seen.add(kind)
    put("password_hash_strings", f"vector-{len(seen)}", h)
for i, v in enumerate([
    "$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHQ$iekCn0Y3spW+sCcFanM2xBT63UP2sghkUoHLIUpWRS8",
    "$argon2i$v=19$m=16,t=2,p=1$c29tZXNhbHQ$AAAAAAAAAAAAAAAAAAAAAA",
    "$argon2d$v=16$m=8,t=1,p=1$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAA",
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$iekCn0Y3spW+sCcFanM2xBT63UP2sghkUoHLIUpWRS8",
    "scrypt:16:8:1$salt$00", "pbkdf2:sha1:10$salt$00ff", "pbkdf2:md5:1000$salt$00", "plain$salt$hash", "",
]):
    put("password_hash_strings", f"shape-{i}", v)

# sanitize: mode byte (0 HTML, 1 Markdown), then about fifty vectors of the XSS corpus.
xss = json.load(open(os.path.join(TESTS, "data", "xss_vectors.json")))
html = [v for v in xss if v["kind"] == "html"][::10]
md = [v for v in xss if v["kind"] == "markdown"][::9]
for v in html + md:
    mode = b"\x00" if v["kind"] == "html" else b"\x01"
    put("sanitize", v["id"][:60], mode + v["payload"].encode())

# settings: NAME=VALUE lines.
for i, v in enumerate([
    "ENV=production\nSECRET_KEY=Zm9vYmFyYmF6cXV4cXV1eHF1dXpmb29iYXJiYXpxdXg\nALLOWED_HOSTS=example.com,.example.org\nTRUSTED_PROXIES=10.0.0.0/8,::1",
    "ENV=development\nADDR=127.0.0.1:8000\nHTTP_ADDR=0.0.0.0:8080\nINSTANCES=2\nREDIS_URL=redis://:pw@localhost:6379/0",
    "ENV=production\nSECRET_KEY_FALLBACKS=a,b,c\nCORS_ORIGINS=https://a.example,*\nCORS_CREDENTIALS=true\nRATE_LIMITS=bench",
    "DATABASE_URL=postgres://u:p%40ss@db/x\nLOG=info,portcullis=debug\nCOOKIE_SECURE=false\nDEV_ALLOW_REMOTE=1",
    "TLS_CERT=/tmp/c.pem\nTLS_KEY=/tmp/k.pem\nTRUST_FORWARDED_HOST=yes\nREDIS_PREFIX=app:\nUPLOAD_DIR=./up\nDATA_DIR=./data",
]):
    put("settings", f"seed-{i}", v)
