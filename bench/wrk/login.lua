-- POST {base}/login as one user, CSRF cookie + header as a browser's SPA would send them.
-- Env: LOGIN_URL_PATH (default /api/auth/login), LOGIN_USER, LOGIN_PASSWORD, CSRF_COOKIE (the
-- cookie's value), CSRF_TOKEN (the X-CSRFToken header); LOGIN_LIMIT (optional): each thread
-- stops sending after that many requests.
local path = os.getenv("LOGIN_URL_PATH") or "/api/auth/login"
local body = string.format('{"username":"%s","password":"%s"}', os.getenv("LOGIN_USER"), os.getenv("LOGIN_PASSWORD"))
local headers = {
  ["Content-Type"] = "application/json",
  ["Cookie"] = "csrftoken=" .. os.getenv("CSRF_COOKIE"),
  ["X-CSRFToken"] = os.getenv("CSRF_TOKEN"),
}
local limit = tonumber(os.getenv("LOGIN_LIMIT") or "0")
if limit > 0 then
  local req = wrk.format("POST", path, headers, body)
  local sent = 0
  function request()
    sent = sent + 1
    if sent > limit then
      wrk.thread:stop()
    end
    return req
  end
else
  -- No request() function: wrk sends the prepared request without calling into Lua.
  wrk.method = "POST"
  wrk.path = path
  wrk.body = body
  wrk.headers = headers
end
