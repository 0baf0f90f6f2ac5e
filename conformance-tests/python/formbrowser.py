"""A very small form-following 'browser' for driving fhirgate's sign-in and
approval pages from Python: follows redirects, fills the sign-in form,
submits forms as a browser would (hidden inputs, checked boxes, the chosen
button), and stops at the app's redirect URI."""
from html.parser import HTMLParser
from urllib.parse import urljoin

import requests


class _Forms(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "method": a.get("method", "get").lower(), "fields": [], "buttons": []})
        elif not self.forms:
            return
        elif tag == "input":
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            self.forms[-1]["fields"].append((a.get("name"), a.get("value", ""), kind))
        elif tag == "button" and a.get("name"):
            self.forms[-1]["buttons"].append((a["name"], a.get("value", "")))


def forms(html: str):
    p = _Forms()
    p.feed(html)
    return p.forms


def run(start_url: str, base: str, stop_prefix: str, username: str, password: str, decision: str = "allow", max_steps: int = 20) -> str:
    """Follows the flow from `start_url` and returns the URL that starts with `stop_prefix`."""
    s = requests.Session()
    url, method, data = start_url, "get", None
    for _ in range(max_steps):
        r = s.request(method, url, data=data, allow_redirects=False)
        if r.is_redirect:
            nxt = urljoin(url, r.headers["location"])
            if nxt.startswith(stop_prefix):
                return nxt
            url, method, data = nxt, "get", None
            continue
        assert r.status_code == 200, f"{method.upper()} {url} -> {r.status_code}: {r.text[:500]}"
        fs = [f for f in forms(r.text) if f["method"] == "post" and not f["action"].endswith("/logout")]
        assert fs, f"no form on {url}: {r.text[:500]}"
        f = fs[0]
        data = [(n, v) for n, v, _ in f["fields"] if n]
        names = {n for n, _ in data}
        if "username" in names:
            data = [(n, username if n == "username" else password if n == "password" else v) for n, v in data]
        for n, v in f["buttons"]:
            if v == decision:
                data.append((n, v))
        url, method = urljoin(url, f["action"] or url), "post"
    raise AssertionError("the flow did not reach the redirect URI")
