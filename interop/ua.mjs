// Headless user agent for the authorization step of the OAuth flows in this suite.
// The AS (as.mjs) logs in and consents automatically; all a client needs is something
// that behaves like a browser: follow redirects by hand (redirect: 'manual') and keep
// cookies, until the AS sends it to the client's redirect_uri.
export class CookieJar {
  cookies = new Map(); // name|path -> {name, value, path}
  store(res, url) {
    for (const sc of res.headers.getSetCookie?.() ?? []) {
      const [pair, ...attrs] = sc.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let path = '/';
      let expired = false;
      for (const a of attrs) {
        const [k, v = ''] = a.split('=');
        const key = k.trim().toLowerCase();
        if (key === 'path') path = v.trim() || '/';
        if (key === 'expires' && Date.parse(v) < Date.now()) expired = true;
        if (key === 'max-age' && Number(v) <= 0) expired = true;
      }
      const id = `${name}|${path}`;
      if (expired || value === '') this.cookies.delete(id);
      else this.cookies.set(id, { name, value, path });
    }
  }
  header(url) {
    const p = new URL(url).pathname;
    return [...this.cookies.values()]
      .filter((c) => p === c.path || p.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`))
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }
}

export async function followAuthorization(authorizationUrl, redirectUrl, jar = new CookieJar(), trace = false) {
  let url = String(authorizationUrl);
  for (let hop = 0; hop < 15; hop++) {
    if (url.startsWith(redirectUrl)) return new URL(url);
    const cookie = jar.header(url);
    const res = await fetch(url, { redirect: 'manual', headers: cookie ? { cookie } : {} });
    if (trace) console.error(`[ua] GET ${url} -> ${res.status}`);
    jar.store(res, url);
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      await res.body?.cancel();
      url = new URL(location, url).toString();
      continue;
    }
    const body = await res.text();
    throw new Error(`authorization flow stopped at ${url}: HTTP ${res.status} ${body.slice(0, 300)}`);
  }
  throw new Error('authorization flow: too many redirects');
}

