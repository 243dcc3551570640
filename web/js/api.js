// The HTTP API client.  Every /api/ call goes through api(): it adds the
// bearer token (kept in sessionStorage, never put in a URL), and on a 401 asks
// the user for the token once (one prompt however many calls failed at the
// same time), then retries.

const KEY = 'taskpool.token';
let token = sessionStorage.getItem(KEY) || '';
let prompting = null;          // Promise while the token form is open
let prompter = async () => { throw new Error('no token prompt installed'); };

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// fn(rejected: boolean) -> Promise<string token>; rejected says the last token failed.
export function setTokenPrompter(fn) { prompter = fn; }

export function authHeaders() {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

export function currentToken() { return token; }

// Called after a 401 for a request sent with usedToken.  Resolves when a new
// token is there (the caller retries).
export function needToken(usedToken) {
  if (token && token !== usedToken) return Promise.resolve();   // someone already fixed it
  if (!prompting) {
    prompting = prompter(Boolean(usedToken)).then((t) => {
      token = t;
      try { sessionStorage.setItem(KEY, t); } catch { /* private mode: keep it in memory */ }
      prompting = null;
    });
  }
  return prompting;
}

// api(path, {method, body, raw}) -> parsed JSON.  body: object (JSON-encoded)
// or a string sent as is.  Throws ApiError (status 0 for network failures).
export async function api(path, { method = 'GET', body, signal } = {}) {
  for (;;) {
    const headers = { Accept: 'application/json', ...authHeaders() };
    let payload;
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      payload = typeof body === 'string' ? body : JSON.stringify(body);
    }
    const used = token;
    let res;
    try {
      res = await fetch(path, { method, headers, body: payload, signal, cache: 'no-store' });
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      throw new ApiError(0, 'network', 'Cannot reach taskpoold.');
    }
    if (res.status === 401) {
      await res.body?.cancel().catch(() => {});
      await needToken(used);
      continue;
    }
    const text = await res.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch { data = null; }
    }
    if (!res.ok) {
      const err = (data && data.error) || {};
      throw new ApiError(res.status, err.code || `http_${res.status}`, err.message || `${res.status} ${res.statusText}`);
    }
    return data;
  }
}
