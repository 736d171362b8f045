# Sourced by the bench scripts: `wrk_post IMAGE DIR` writes DIR/post.lua, a wrk script that
# posts IMAGE to the native API as JSON base64 (the body built once, read by wrk).
wrk_post() {
  printf '{"image":{"base64":"%s"}}' "$(base64 -w0 "$1")" > "$2/body.json"
  cat > "$2/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$2/body.json", "rb")
wrk.body = f:read("*a")
f:close()
LUA
}
