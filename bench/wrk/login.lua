-- POST {base}/login as one user, CSRF cookie + header as a browser's SPA would send them.
-- Env: LOGIN_URL_PATH, LOGIN_USER, LOGIN_PASSWORD, CSRF_COOKIE (cookie value), CSRF_TOKEN (masked
-- token for the header); LOGIN_LIMIT (optional): each thread stops after that many requests.
local path = os.getenv("LOGIN_URL_PATH") or "/api/auth/login"
local body = string.format('{"username":"%s","password":"%s"}', os.getenv("LOGIN_USER"), os.getenv("LOGIN_PASSWORD"))
local headers = {
  ["Content-Type"] = "application/json",
  ["Cookie"] = "csrftoken=" .. os.getenv("CSRF_COOKIE"),
  ["X-CSRFToken"] = os.getenv("CSRF_TOKEN"),
}
local req = wrk.format("POST", path, headers, body)
local limit = tonumber(os.getenv("LOGIN_LIMIT") or "0")
local sent = 0

function request()
  sent = sent + 1
  if limit > 0 and sent > limit then
    wrk.thread:stop()
  end
  return req
end
