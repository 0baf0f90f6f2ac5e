//! A minimal browser for the federation tests: keeps cookies (scoped by
//! host and path, as browsers do), follows no redirect by itself.

/// One cookie in the jar (browsers scope cookies by host, not port).
#[derive(Debug, Clone)]
pub struct Cookie {
    host: String,
    name: String,
    value: String,
    path: String,
}

/// One response, read.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub set_cookies: Vec<String>,
    pub body: String,
}

/// A browser: keeps cookies, follows nothing by itself.
pub struct Browser {
    http: reqwest::Client,
    pub jar: Vec<Cookie>,
}

impl Browser {
    pub fn new() -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            http,
            jar: Vec::new(),
        }
    }

    /// Drops cookie `name` (all hosts).
    pub fn forget(&mut self, name: &str) {
        self.jar.retain(|c| c.name != name);
    }

    fn cookie_header(&self, url: &url::Url) -> String {
        let host = url.host_str().unwrap_or("");
        self.jar
            .iter()
            .filter(|c| c.host == host && url.path().starts_with(&c.path))
            .map(|c| format!("{}={}", c.name, c.value))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn store(&mut self, url: &url::Url, set_cookie: &str) {
        let mut parts = set_cookie.split(';').map(str::trim);
        let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else {
            return;
        };
        let mut path = "/".to_owned();
        let mut delete = value.is_empty();
        for attr in parts {
            let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
            match k.to_ascii_lowercase().as_str() {
                "path" => path = v.to_owned(),
                "max-age" => delete |= v.trim() == "0",
                "expires" => delete |= v.contains("1970"),
                _ => {}
            }
        }
        let host = url.host_str().unwrap_or("").to_owned();
        self.jar
            .retain(|c| !(c.host == host && c.name == name && c.path == path));
        if !delete {
            self.jar.push(Cookie {
                host,
                name: name.to_owned(),
                value: value.to_owned(),
                path,
            });
        }
    }

    async fn send(&mut self, url: &str, form: Option<&[(&str, &str)]>) -> Page {
        let parsed = url::Url::parse(url).unwrap();
        let mut req = match form {
            Some(pairs) => self.http.post(url).form(pairs),
            None => self.http.get(url),
        };
        let cookies = self.cookie_header(&parsed);
        if !cookies.is_empty() {
            req = req.header("cookie", cookies);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let location = res
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let set_cookies: Vec<String> = res
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect();
        for c in &set_cookies {
            self.store(&parsed, c);
        }
        let body = res.text().await.unwrap_or_default();
        Page {
            status,
            location,
            set_cookies,
            body,
        }
    }

    pub async fn get(&mut self, url: &str) -> Page {
        self.send(url, None).await
    }

    pub async fn post_form(&mut self, url: &str, pairs: &[(&str, &str)]) -> Page {
        self.send(url, Some(pairs)).await
    }
}
