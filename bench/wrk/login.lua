-- POST /api/auth/login (the URL's path) as one user, CSRF cookie + header as a browser's SPA
-- would send them. Env: LOGIN_USER, LOGIN_PASSWORD, CSRF_COOKIE (the cookie's value),
-- CSRF_TOKEN (the X-CSRFToken header). No request() function: wrk sends the prepared request
-- without calling into Lua.
wrk.method = "POST"
wrk.body = string.format('{"username":"%s","password":"%s"}', os.getenv("LOGIN_USER"), os.getenv("LOGIN_PASSWORD"))
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Cookie"] = "csrftoken=" .. os.getenv("CSRF_COOKIE")
wrk.headers["X-CSRFToken"] = os.getenv("CSRF_TOKEN")
