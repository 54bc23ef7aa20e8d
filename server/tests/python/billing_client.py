"""Money and the public APIs through the official `openai` Python client and plain HTTP (the
standard library's), as chat clients and scripts use them (driven by server/tests/it/python.rs)."""
import datetime
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request

from openai import BadRequestError, OpenAI

base = os.environ["TOLLGATE_BASE_URL"]  # .../v1
root = base[: -len("/v1")]
key = os.environ["TOLLGATE_API_KEY"]
code = os.environ["TOLLGATE_REDEEM_CODE"]
client = OpenAI(base_url=base, api_key=key, max_retries=0)
passed = 0


class Answer:
    def __init__(self, status_code, text):
        self.status_code, self.text = status_code, text

    def json(self):
        return json.loads(self.text)


class Http:
    """Plain HTTP with the API key, as a script would call the REST API."""

    def request(self, method, path, params=None, body=None, headers=None, auth=True):
        url = root + path + ("?" + urllib.parse.urlencode(params) if params else "")
        h = {"Content-Type": "application/json", **(headers or {})}
        if auth:
            h["Authorization"] = f"Bearer {key}"
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, headers=h, method=method)
        try:
            with urllib.request.urlopen(req) as res:
                return Answer(res.status, res.read().decode())
        except urllib.error.HTTPError as err:
            return Answer(err.code, err.read().decode())

    def get(self, path, params=None, auth=True):
        return self.request("GET", path, params=params, auth=auth)

    def post(self, path, json=None, headers=None):
        return self.request("POST", path, body=json, headers=headers)


http = Http()

# Redeem a voucher: check it, redeem it (idempotently), and the balance grows by its value.
check = http.get("/api/redeem", params={"code": code}).json()
assert check["redeemable"] is True and check["value"] == "4.00", check
first = http.post("/api/redeem", json={"code": code}, headers={"Idempotency-Key": "py-1"})
assert first.status_code == 200, first.text
replay = http.post("/api/redeem", json={"code": code}, headers={"Idempotency-Key": "py-1"})
assert replay.json() == first.json(), (replay.text, first.text)
again = http.post("/api/redeem", json={"code": code})
assert again.status_code == 400 and again.json()["error"]["param"] == "code", again.text
passed += 1

reply = client.chat.completions.create(
    model="gpt-4o-mini", messages=[{"role": "user", "content": "hello there world"}]
)
assert reply.usage.completion_tokens == 6, reply.usage

# The call shows in the logs once its row is written.
deadline = time.time() + 10
while True:
    logs = http.get("/api/logs", params={"page": 1, "page_size": 10}).json()
    if logs["meta"]["total"] >= 1:
        break
    assert time.time() < deadline, logs
    time.sleep(0.1)
assert logs["data"][0]["model"] == "gpt-4o-mini", logs
assert logs["meta"]["current_page"] == 1 and logs["meta"]["total_pages"] == 1, logs
passed += 1

# What a chat client shows: hard limit minus usage is what remains, for a lifetime and a window.
credits = client.get("/credits", cast_to=object)
remaining = credits["total_available"]
assert abs(remaining - (credits["total_granted"] - credits["total_used"])) < 1e-9, credits
today = datetime.datetime.now(datetime.timezone.utc).date()
window = {"start_date": (today - datetime.timedelta(days=30)).isoformat(),
          "end_date": (today + datetime.timedelta(days=1)).isoformat()}
for params in ({}, window):
    sub = client.get("/dashboard/billing/subscription", cast_to=object, options={"params": params})
    usage = client.get("/dashboard/billing/usage", cast_to=object, options={"params": params})
    assert sub["object"] == "billing_subscription" and sub["has_payment_method"] is True, sub
    assert usage["object"] == "list" and usage["total_usage"] > 0, usage
    assert abs(sub["hard_limit_usd"] - usage["total_usage"] / 100 - remaining) < 1e-9, (sub, usage, credits)
days = usage["daily_costs"]
assert len(days) == 1 and days[0]["line_items"][0]["name"] == "gpt-4o-mini", usage
passed += 1

try:
    client.get("/dashboard/billing/usage", cast_to=object,
               options={"params": {"start_date": "2026-02-30", "end_date": "2026-03-01"}})
    raise SystemExit("a bad date was accepted")
except BadRequestError as err:
    assert err.status_code == 400 and err.body["param"] == "start_date", err.body
passed += 1

pricing = http.get("/api/pricing", auth=False).json()
assert any(p["model"] == "gpt-4o-mini" and p["output_per_1m"] == "0.60" for p in pricing["data"]), pricing
about = http.get("/api/about", auth=False).json()
assert about["name"] == "Tollgate" and about["version"], about
passed += 1

print(f"billing client: {passed} passed, 0 failed")
