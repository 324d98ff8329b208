#!/usr/bin/env python3
"""status_dom.py -- read the status page's DOM as Chromium rendered it (--dump-dom, on stdin) and
print what it shows as one JSON object (test_status_page.sh):
  {"updated": bool, "quorum": "quorate", "hosts": [{"host", "state"}],
   "vms": [{"vm", "host", "state"}], "migrations": [{"vm", "result", "percent"}],
   "events": ["kind", ...]}
Rows are the <tr data-...> the page's script rendered inside #hosts, #vms, #migrations and
#events (the script's own text is not parsed)."""
import json
import sys
from html.parser import HTMLParser

SECTIONS = ("hosts", "vms", "migrations", "events")


class Dom(HTMLParser):
    def __init__(self):
        super().__init__()
        self.out = {"updated": False, "quorum": "", "hosts": [], "vms": [], "migrations": [],
                    "events": []}
        self.section = None
        self.in_quorum = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body" and a.get("data-updated"):
            self.out["updated"] = True
        if tag == "div" and a.get("id") in SECTIONS:
            self.section = a["id"]
        if tag == "span" and a.get("id") == "quorum":
            self.in_quorum = True
        if tag != "tr" or not self.section:
            return
        if self.section == "hosts" and "data-host" in a:
            self.out["hosts"].append({"host": a["data-host"], "state": a.get("data-state")})
        elif self.section == "vms" and "data-vm" in a:
            self.out["vms"].append({"vm": a["data-vm"], "host": a.get("data-host"),
                                    "state": a.get("data-state")})
        elif self.section == "migrations" and "data-vm" in a:
            self.out["migrations"].append({"vm": a["data-vm"], "result": a.get("data-result"),
                                           "percent": int(a.get("data-percent") or 0)})
        elif self.section == "events" and "data-kind" in a:
            self.out["events"].append(a["data-kind"])

    def handle_endtag(self, tag):
        if tag == "section":
            self.section = None
        if tag == "span":
            self.in_quorum = False

    def handle_data(self, data):
        if self.in_quorum:
            self.out["quorum"] += data.strip()


d = Dom()
d.feed(sys.stdin.read())
print(json.dumps(d.out))
