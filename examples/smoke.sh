#!/usr/bin/env bash
# Builds the examples (debug) and runs each one: starts its binary on a free loopback
# port, sends the requests that show its protection working, and stops it. Exits
# non-zero at the first answer that is not the expected one.
#
#   bash examples/smoke.sh
#
# CARGO_TARGET_DIR, when set, is where the build goes (CI points it at the root's
# `target`, so the examples reuse the product's compiled dependencies); by default the
# root's `target` too.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$CARGO_TARGET_DIR/debug
WORK=$(mktemp -d)
PASSWORD='correct horse battery staple'

for tool in curl python3 base64; do
  command -v "$tool" >/dev/null 2>&1 || { echo "examples/smoke.sh: $tool is needed" >&2; exit 1; }
done

PID=
EXAMPLE=
LOG=
stop() {
  if [ -n "$PID" ]; then
    kill "$PID" 2>/dev/null || true
    # At most 5 s for a graceful exit, then the hard way: only this PID, ours.
    for _ in $(seq 1 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    PID=
  fi
}
trap 'stop; rm -rf "$WORK"' EXIT

fail() {
  printf 'examples/smoke.sh: %s: %s\n' "$EXAMPLE" "$*" >&2
  if [ -n "$LOG" ] && [ -f "$LOG" ]; then
    echo "--- last lines of the example's output:" >&2
    tail -n 20 "$LOG" >&2
  fi
  exit 1
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Starts example $1 and waits (20 s at most) until it answers HTTP on its port.
start() {
  EXAMPLE=$1
  local port
  port=$(free_port)
  BASE=http://127.0.0.1:$port
  LOG=$WORK/$EXAMPLE.log
  PORT=$port UPLOAD_DIR="$WORK/uploads" "$BIN/example-$EXAMPLE" >"$LOG" 2>&1 &
  PID=$!
  for _ in $(seq 1 100); do
    curl -s -o /dev/null --max-time 1 "$BASE/" && { printf '== %s on %s\n' "$EXAMPLE" "$BASE"; return 0; }
    kill -0 "$PID" 2>/dev/null || fail "exited before answering"
    sleep 0.2
  done
  fail "did not answer on $BASE within 20 s"
}

# One request: `expect STATUS WHAT curl-arguments…`, WHAT saying what is sent. The
# answer's headers go to $WORK/h, its body to $WORK/b.
expect() {
  local want=$1 what=$2 got
  shift 2
  got=$(curl -sS --max-time 10 -o "$WORK/b" -D "$WORK/h" -w '%{http_code}' "$@") ||
    fail "curl $* failed"
  local method=GET url= arg
  for arg in "$@"; do
    case $arg in
      -d | --data-urlencode | -F | -X) method=POST ;; # -X is only ever POST here
      http://*) url=${arg#"$BASE"} ;;
    esac
  done
  [ "$got" = "$want" ] || fail "$method $url ($what) answered $got, not $want: $(head -c 300 "$WORK/b")"
  printf '   %s  %s %s (%s)\n' "$got" "$method" "$url" "$what"
}

# The value of header $1 of the last answer ('' when absent).
header() {
  { grep -i "^$1:" "$WORK/h" || true; } | head -n 1 | cut -d: -f2- | tr -d '\r' | sed 's/^ *//'
}

# `header_is NAME PATTERN`: the last answer's header NAME matches the grep pattern.
header_is() {
  header "$1" | grep -q -- "$2" || fail "header $1 is '$(header "$1")', expected $2"
}

body_has() { grep -q -- "$1" "$WORK/b" || fail "the body lacks $1: $(head -c 300 "$WORK/b")"; }
body_lacks() { ! grep -q -- "$1" "$WORK/b" || fail "the body contains $1"; }
json_field() { sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p" "$WORK/b"; }

echo "== building the examples"
cargo build --manifest-path "$ROOT/examples/Cargo.toml" --bins

# ---------------------------------------------------------------- headers-only
start headers-only
expect 200 "a page" "$BASE/"
header_is content-security-policy "script-src 'nonce-"
header_is x-content-type-options nosniff
header_is x-frame-options DENY
header_is referrer-policy strict-origin-when-cross-origin
header_is x-request-id .
# The page's script carries the nonce of this response's policy.
nonce=$(sed -n 's/.*<script nonce="\([^"]*\)".*/\1/p' "$WORK/b")
[ -n "$nonce" ] || fail "no nonce in the page"
header_is content-security-policy "'nonce-$nonce'"
# Errors get the headers too.
expect 404 "a missing page" "$BASE/missing"
header_is content-security-policy "script-src 'nonce-"
# A Host the app does not serve (DNS rebinding) is refused.
expect 400 "an unknown Host" -H 'Host: evil.example' "$BASE/"
stop

# ---------------------------------------------------------------- form-login
start form-login
jar=$WORK/form-login.cookies
token_of_page() {
  sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p' "$WORK/b" | head -n 1
}
expect 200 "the login form" -c "$jar" -b "$jar" "$BASE/login?next=/private"
token=$(token_of_page)
[ -n "$token" ] || fail "no CSRF token on /login"
login=(-c "$jar" -b "$jar" -H 'accept: application/json' "$BASE/login")
# No token: refused before the handler runs.
expect 403 "no CSRF token" "${login[@]}" --data-urlencode username=alice --data-urlencode "password=$PASSWORD"
body_has csrf_missing
# A forged token, and a cross-site post with the right one: refused.
expect 403 "a forged CSRF token" "${login[@]}" --data-urlencode csrf_token=forged --data-urlencode username=alice \
  --data-urlencode "password=$PASSWORD"
expect 403 "a cross-site Origin" "${login[@]}" -H 'Origin: https://evil.example' --data-urlencode "csrf_token=$token" \
  --data-urlencode username=alice --data-urlencode "password=$PASSWORD"
body_has csrf_origin
expect 403 "Sec-Fetch-Site: cross-site" "${login[@]}" -H 'Sec-Fetch-Site: cross-site' --data-urlencode "csrf_token=$token" \
  --data-urlencode username=alice --data-urlencode "password=$PASSWORD"
expect 401 "anonymous" "$BASE/private"
expect 401 "a wrong password" "${login[@]}" --data-urlencode "csrf_token=$token" --data-urlencode username=alice \
  --data-urlencode password=wrong
expect 303 "the right password" "${login[@]}" --data-urlencode "csrf_token=$token" --data-urlencode username=alice \
  --data-urlencode "password=$PASSWORD" --data-urlencode next=/private
header_is location '^/private$'
header_is set-cookie 'HttpOnly'
expect 200 "logged in" -b "$jar" "$BASE/private"
body_has 'Only user 1'
# Logging out ends the session on the server: the same cookie is then anonymous.
cp "$jar" "$WORK/form-login.before-logout"
expect 200 "the logout form" -c "$jar" -b "$jar" "$BASE/"
token=$(token_of_page)
expect 303 "logging out" -c "$jar" -b "$jar" --data-urlencode "csrf_token=$token" "$BASE/logout"
expect 401 "the cookie of before the logout" -b "$WORK/form-login.before-logout" "$BASE/private"
stop

# ---------------------------------------------------------------- jwt-api
start jwt-api
credentials="{\"username\":\"alice\",\"password\":\"$PASSWORD\"}"
json=(-H 'content-type: application/json')
expect 401 "no token" "$BASE/api/me"
header_is www-authenticate Bearer
expect 401 "a malformed token" -H 'authorization: Bearer not.a.token' "$BASE/api/me"
expect 401 "a wrong password" "${json[@]}" -d '{"username":"alice","password":"wrong"}' "$BASE/api/token"
expect 200 "the right password" "${json[@]}" -d "$credentials" "$BASE/api/token"
header_is cache-control no-store
access=$(json_field access_token)
refresh=$(json_field refresh_token)
[ -n "$access" ] && [ -n "$refresh" ] || fail "no token pair: $(cat "$WORK/b")"
expect 200 "the access token" -H "authorization: Bearer $access" "$BASE/api/me"
body_has '"user_id":1'
# Rotation: a refresh token works once; presenting it again revokes its whole family,
# the new pair included.
expect 200 "the refresh token" "${json[@]}" -d "{\"refresh_token\":\"$refresh\"}" "$BASE/api/token/refresh"
rotated=$(json_field access_token)
expect 200 "the rotated access token" -H "authorization: Bearer $rotated" "$BASE/api/me"
expect 401 "the refresh token again" "${json[@]}" -d "{\"refresh_token\":\"$refresh\"}" "$BASE/api/token/refresh"
expect 401 "the rotated access token, its family revoked" -H "authorization: Bearer $rotated" "$BASE/api/me"
# Logging out revokes the token at once.
expect 200 "a new login" "${json[@]}" -d "$credentials" "$BASE/api/token"
access=$(json_field access_token)
expect 204 "revoking" -X POST -H "authorization: Bearer $access" "$BASE/api/token/revoke"
expect 401 "the revoked token" -H "authorization: Bearer $access" "$BASE/api/me"
stop

# ---------------------------------------------------------------- rate-limited-login
start rate-limited-login
attempt() { expect "$1" "as $2" --data-urlencode "username=$2" --data-urlencode "password=$3" "$BASE/login"; }
attempt 200 alice "$PASSWORD"
header_is ratelimit-remaining .
attempt 401 alice wrong
attempt 401 Alice wrong
# Three a minute per username ("Alice" counted as "alice"): even the right password waits.
attempt 429 alice "$PASSWORD"
header_is retry-after '^[0-9]'
# Another name still gets in from this address ...
attempt 401 bob wrong
# ... until the address has used its five a minute, whatever the names.
limited=
for name in carol dave erin frank; do
  status=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' \
    --data-urlencode "username=$name" --data-urlencode password=wrong "$BASE/login")
  printf '   %s  POST /login (as %s)\n' "$status" "$name"
  case $status in
    429) limited=1; break ;;
    401) ;;
    *) fail "POST /login as $name answered $status" ;;
  esac
done
[ -n "$limited" ] || fail "the per-IP limit never answered 429"
stop

# ---------------------------------------------------------------- uploads
start uploads
# A 1×1 PNG with a text chunk that says where it was taken.
echo 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAAHHRFWHRDb21tZW50AEdQUyA0OC44NTg0TiAyLjI5NDVFYwJFKQAAAAxJREFUeJxj+M/AAAADAQEAyf6S7wAAAABJRU5ErkJggg==' |
  base64 -d >"$WORK/photo.png"
grep -q 'GPS 48.8584N' "$WORK/photo.png" || fail "the test image lacks its metadata"
printf '<html><script>alert(document.cookie)</script></html>' >"$WORK/page.html"
printf '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>' >"$WORK/drawing.svg"
head -c $((3 * 1024 * 1024)) /dev/zero >"$WORK/large.png"
# Disguised files: HTML named as an image, an SVG (script inside), a PNG header on HTML.
expect 415 "HTML named cat.png" -F "file=@$WORK/page.html;filename=cat.png" "$BASE/upload"
expect 415 "an SVG" -F "file=@$WORK/drawing.svg;filename=drawing.svg" "$BASE/upload"
{ head -c 33 "$WORK/photo.png"; cat "$WORK/page.html"; } >"$WORK/polyglot.png"
expect 415 "a PNG header on HTML" -F "file=@$WORK/polyglot.png;filename=polyglot.png" "$BASE/upload"
expect 413 "3 MiB" -F "file=@$WORK/large.png;filename=large.png" "$BASE/upload"
expect 201 "a PNG with metadata" -F "file=@$WORK/photo.png;filename=../../holiday photo.png" "$BASE/upload"
url=$(json_field url)
[ -n "$url" ] || fail "no url in $(cat "$WORK/b")"
expect 200 "the download" "$BASE$url"
header_is content-type '^image/png$'
header_is content-disposition '^attachment;'
header_is x-content-type-options nosniff
header_is content-security-policy sandbox
body_has PNG
body_lacks 'GPS 48.8584N'
expect 404 "an unknown id" "$BASE/files/0123456789abcdef0123456789abcdef"
expect 404 "a path" "$BASE/files/..%2f..%2fetc%2fpasswd"
stop

echo "== every example behaved"
