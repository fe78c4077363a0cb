"""The live view (issue 15): one self-contained page (plain JavaScript and SVG, no library)
and the JSON it reads, built from the statistics collector (the data the CIM metric
classes and /metrics show).

``GET /live``: the page.  It polls ``/live/api/overview`` (hosts, and every guest's
state and last values: about 150 bytes per guest) and, for the host and the guest
selected, ``/live/api/history?host=H&key=K`` (the collector's history of that
element).  With 1000 guests the table shows the first 300 rows that match the
filter (name, host or state words; sorted by a column), so that the browser never
lays out thousands of rows at once.
"""

from __future__ import annotations

import math
import time
from typing import Any, Optional

from ..virt import stats
from ..virt.statsdefs import STATE_NAMES

__all__ = ["PAGE", "overview", "history"]


def _num(v: Optional[float]) -> Optional[float]:
    return None if v is None or math.isnan(v) else round(v, 3)


def overview(col: stats.Collector) -> dict[str, Any]:
    """Hosts and guests with their last values (JSON-ready)."""
    hosts, guests = [], []
    for h in col.hosts():
        _t, latest = col.latest_all(h.label)
        hv = latest.get("host", {})
        hosts.append({"label": h.label, "uri": h.uri, "family": h.family, "up": h.up,
                      "error": h.error, "domains": h.domains, "last": h.last_sample,
                      "cpu": _num(hv.get("host_cpu_util")),
                      "mem_total": _num(hv.get("host_mem_total")),
                      "mem_used": _num(hv.get("host_mem_used"))})
        for d in col.domains(h.label):
            dv = latest.get("domain:" + d.name, {})
            sums = {"rd": 0.0, "wr": 0.0, "rx": 0.0, "tx": 0.0}
            seen = {"rd": False, "wr": False, "rx": False, "tx": False}
            for dev in d.disks:
                vals = latest.get(f"disk:{d.name}/{dev}", {})
                for k, m in (("rd", "disk_rd_bytes"), ("wr", "disk_wr_bytes")):
                    if m in vals:
                        sums[k] += vals[m]
                        seen[k] = True
            for dev in d.nics:
                vals = latest.get(f"nic:{d.name}/{dev}", {})
                for k, m in (("rx", "net_rx_bytes"), ("tx", "net_tx_bytes")):
                    if m in vals:
                        sums[k] += vals[m]
                        seen[k] = True
            guests.append({"h": h.label, "n": d.name, "s": STATE_NAMES.get(d.state, "unknown"),
                           "cpu": _num(dv.get("cpu_util")), "mem": _num(dv.get("mem_assigned")),
                           "memu": _num(dv.get("mem_used")),
                           "vcpus": d.vcpus if d.vcpus is not None else _num(dv.get("vcpus")),
                           **{k: (_num(sums[k]) if seen[k] else None) for k in sums}})
    return {"time": time.time(), "interval": col.settings.interval, "hosts": hosts,
            "guests": guests}


def _aligned(col: stats.Collector, label: str, key: str, metric: str, n: int
             ) -> list[Optional[float]]:
    hist = col.history(label, key, metric)
    values: list[Optional[float]] = [_num(v) for _t, v in hist[-n:]] if n else []
    return [None] * (n - len(values)) + values


def _summed(col: stats.Collector, label: str, keys: list[str], metric: str, n: int
            ) -> list[Optional[float]]:
    out: list[Optional[float]] = [None] * n
    for key in keys:
        for i, v in enumerate(_aligned(col, label, key, metric, n)):
            if v is not None:
                out[i] = (out[i] or 0.0) + v
    return out


def history(col: stats.Collector, label: str, key: str) -> dict[str, Any]:
    """The history of the host (key 'host') or of a guest (key 'domain:NAME', its disks
    and NICs summed): sample times and one series per graph line."""
    times = col.sample_times(label)
    n = len(times)
    if key == "host":
        series = {m: _aligned(col, label, "host", m, n)
                  for m in ("host_cpu_util", "host_mem_used", "host_mem_total")}
    elif key.startswith("domain:"):
        name = key[len("domain:"):]
        d = col.domain(label, name)
        disks = [f"disk:{name}/{x}" for x in (d.disks if d else [])]
        nics = [f"nic:{name}/{x}" for x in (d.nics if d else [])]
        series = {m: _aligned(col, label, key, m, n)
                  for m in ("cpu_util", "mem_assigned", "mem_used")}
        series["disk_rd"] = _summed(col, label, disks, "disk_rd_bytes", n)
        series["disk_wr"] = _summed(col, label, disks, "disk_wr_bytes", n)
        series["net_rx"] = _summed(col, label, nics, "net_rx_bytes", n)
        series["net_tx"] = _summed(col, label, nics, "net_tx_bytes", n)
    else:
        raise ValueError(f"unknown element {key[:100]!r} (host, or domain:NAME)")
    # The rounds in which the host answered (a gap is a round it did not: every host
    # round that answered has the host's memory total, from getInfo at least).
    up = [v is not None for v in _aligned(col, label, "host", "host_mem_total", n)]
    return {"host": label, "key": key, "t": [round(t, 3) for t in times], "up": up,
            "series": series}


PAGE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>kvm_providers - live view</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px system-ui,sans-serif;margin:0;background:#f4f5f7;color:#222}
header{background:#1f3a5f;color:#fff;padding:8px 16px;display:flex;gap:16px;align-items:center}
header h1{font-size:17px;margin:0;font-weight:600}#status{font-size:12px;opacity:.85}
main{padding:12px 16px;display:grid;grid-template-columns:minmax(420px,1fr) 520px;gap:14px}
section{background:#fff;border-radius:6px;box-shadow:0 1px 2px #0002;padding:10px}
h2{font-size:14px;margin:0 0 8px}#hosts{display:flex;flex-wrap:wrap;gap:10px;grid-column:1/3}
.host{border:1px solid #ddd;border-radius:6px;padding:8px;min-width:260px;cursor:pointer}
.host.down{border-color:#c33;background:#fff4f4}.host.sel{outline:2px solid #1f3a5f}
table{border-collapse:collapse;width:100%;font-size:13px}
th{text-align:left;cursor:pointer;border-bottom:2px solid #ccc;padding:3px 6px;user-select:none}
td{padding:2px 6px;border-bottom:1px solid #eee;white-space:nowrap}
td.hl{max-width:140px;overflow:hidden;text-overflow:ellipsis}
tr.g:hover{background:#eef3fb;cursor:pointer}tr.sel{background:#dbe7f7}
.bar{display:inline-block;height:8px;background:#3b7dd8;vertical-align:middle;margin-right:4px}
.st-running{color:#17803d}.st-paused,.st-crashed{color:#b3261e}.st-shutoff{color:#777}
#tools{display:flex;gap:8px;margin-bottom:6px}#filter{flex:1;padding:4px}
svg.graph{width:100%;height:110px;background:#fbfbfd;border:1px solid #e3e3e8}
.legend{font-size:12px;margin:2px 0 8px}.legend span{margin-right:10px}
.gap{fill:#f3d6d6}.muted{color:#888;font-size:12px}
</style></head>
<body>
<header><h1>kvm_providers live view</h1><span id="status">loading...</span></header>
<main>
<div id="hosts"></div>
<section><h2>Guests <span id="count" class="muted"></span></h2>
<div id="tools"><input id="filter" placeholder="filter: name, host or state (e.g. running web)">
<select id="state"><option value="">any state</option><option>running</option>
<option>paused</option><option>shutoff</option><option>crashed</option></select></div>
<table id="guests"><thead><tr><th data-k="n">Name</th><th data-k="h">Host</th>
<th data-k="s">State</th><th data-k="cpu">CPU</th><th data-k="mem">Memory</th>
<th data-k="io">Disk r/w</th><th data-k="net">Net rx/tx</th></tr></thead><tbody></tbody></table>
<div id="more" class="muted"></div></section>
<section id="detail"><h2 id="dtitle">Select a guest or a host</h2><div id="graphs"></div></section>
</main>
<script>
"use strict";
const $ = s => document.querySelector(s);
let data = null, sort = {k: "n", dir: 1}, sel = null, timer = null;
const MAX_ROWS = 300;
function fmtB(v){ if(v==null) return "-"; const u=["B","KiB","MiB","GiB","TiB"]; let i=0;
  while(Math.abs(v)>=1024&&i<u.length-1){v/=1024;i++} return v.toFixed(v<10&&i?1:0)+" "+u[i]; }
function fmtR(v){ return v==null ? "-" : fmtB(v)+"/s"; }
function fmtP(v){ return v==null ? "-" : v.toFixed(1)+" %"; }
function esc(s){ return String(s).replace(/[&<>"']/g, c => "&#"+c.charCodeAt(0)+";"); }
async function get(url){ const r = await fetch(url, {credentials: "same-origin", cache: "no-store"});
  if(!r.ok) throw new Error(url+": "+r.status); return r.json(); }
function hostsView(){
  $("#hosts").innerHTML = data.hosts.map(h => `<div class="host ${h.up?"":"down"} ${sel&&sel.key==="host"&&sel.host===h.label?"sel":""}" data-host="${esc(h.label)}">
   <b>${esc(h.label)}</b> <span class="muted">${esc(h.uri)}</span><br>
   ${h.up ? `${h.domains} guests, CPU ${fmtP(h.cpu)}, memory ${fmtB(h.mem_used)} / ${fmtB(h.mem_total)}`
          : `<span class="st-crashed">unreachable</span> <span class="muted">${esc(h.error||"")}</span>`}</div>`).join("");
  for(const el of document.querySelectorAll(".host")) el.onclick = () => select(el.dataset.host, "host");
}
function val(g, k){ if(k==="io") return (g.rd||0)+(g.wr||0); if(k==="net") return (g.rx||0)+(g.tx||0);
  return g[k]; }
function guestsView(){
  const words = $("#filter").value.toLowerCase().split(/\s+/).filter(Boolean), st = $("#state").value;
  let rows = data.guests.filter(g => (!st || g.s===st) &&
     words.every(w => g.n.toLowerCase().includes(w) || g.h.toLowerCase().includes(w) || g.s.includes(w)));
  rows.sort((a,b) => { const x=val(a,sort.k), y=val(b,sort.k);
     if(x==y) return a.n<b.n?-1:1; if(x==null) return 1; if(y==null) return -1;
     return (x<y?-1:1)*sort.dir; });
  $("#count").textContent = `(${rows.length} of ${data.guests.length})`;
  $("#more").textContent = rows.length>MAX_ROWS ? `${rows.length-MAX_ROWS} more: refine the filter` : "";
  $("#guests tbody").innerHTML = rows.slice(0, MAX_ROWS).map(g => {
    const on = sel && sel.host===g.h && sel.key==="domain:"+g.n;
    return `<tr class="g ${on?"sel":""}" data-host="${esc(g.h)}" data-name="${esc(g.n)}">
     <td>${esc(g.n)}</td><td class="hl" title="${esc(g.h)}">${esc(g.h)}</td><td class="st-${esc(g.s)}">${esc(g.s)}</td>
     <td>${g.cpu==null?"-":`<span class="bar" style="width:${Math.round(Math.min(100,g.cpu)/2)}px"></span>${g.cpu.toFixed(1)} %`}</td>
     <td>${fmtB(g.mem)}</td><td>${fmtR(g.rd)} ${fmtR(g.wr)}</td><td>${fmtR(g.rx)} ${fmtR(g.tx)}</td></tr>`;}).join("");
}
function graph(title, t, up, lines, fmt){
  const W=500, H=110, P=4, n=t.length;
  let max = 0; for(const l of lines) for(const v of l.v) if(v!=null && v>max) max=v;
  if(max<=0) max = 1;
  const x = i => P + (n>1 ? i*(W-2*P)/(n-1) : 0), y = v => H-P - v*(H-2*P)/max;
  let gaps = "";
  for(let i=0;i<n;i++) if(!up[i])        // the host did not answer: a gap
    gaps += `<rect class="gap" x="${x(i)-2}" y="0" width="4" height="${H}"/>`;
  const none = lines.every(l => l.v.every(v => v==null))
    ? `<text x="${W/2}" y="${H/2}" text-anchor="middle" fill="#999" font-size="12">no data</text>` : "";
  const paths = lines.map(l => { let d="", pen=false;
    let dots = "";
    l.v.forEach((v,i) => { if(v==null){pen=false;return;} d += (pen?"L":"M")+x(i).toFixed(1)+","+y(v).toFixed(1);
      if(!pen && (i+1>=n || l.v[i+1]==null)) dots += `<circle cx="${x(i).toFixed(1)}" cy="${y(v).toFixed(1)}" r="2.5" fill="${l.c}"/>`;
      pen=true; });
    return `<path data-series="${l.id}" d="${d}" fill="none" stroke="${l.c}" stroke-width="1.6"/>${dots}`; }).join("");
  const last = lines.map(l => { const v = l.v.filter(v => v!=null).pop();
    return `<span style="color:${l.c}">${l.name}: ${v==null?"-":fmt(v)}</span>`; }).join("");
  return `<div><b>${title}</b> <span class="muted">max ${fmt(max)}</span>
   <svg class="graph" viewBox="0 0 ${W} ${H}" preserveAspectRatio="none" data-title="${title}">${gaps}${paths}${none}</svg>
   <div class="legend">${last}</div></div>`;
}
async function detail(){
  if(!sel) return;
  const h = await get(`/live/api/history?host=${encodeURIComponent(sel.host)}&key=${encodeURIComponent(sel.key)}`);
  const s = h.series, t = h.t, up = h.up;
  const span = t.length>1 ? Math.round((t[t.length-1]-t[0])/60)+" min" : "one sample";
  $("#dtitle").textContent = (sel.key==="host" ? "Host "+sel.host : sel.key.slice(7)+" on "+sel.host)+" ("+span+")";
  const pct = v => v.toFixed(1)+" %", bps = v => fmtB(v)+"/s";
  $("#graphs").innerHTML = sel.key==="host"
   ? graph("CPU", t, up, [{id:"host_cpu_util", name:"busy", v:s.host_cpu_util, c:"#3b7dd8"}], pct) +
     graph("Memory", t, up, [{id:"host_mem_used", name:"used", v:s.host_mem_used, c:"#d8793b"},
                         {id:"host_mem_total", name:"total", v:s.host_mem_total, c:"#999"}], fmtB)
   : graph("CPU", t, up, [{id:"cpu_util", name:"utilization", v:s.cpu_util, c:"#3b7dd8"}], pct) +
     graph("Memory", t, up, [{id:"mem_used", name:"used", v:s.mem_used, c:"#d8793b"},
                         {id:"mem_assigned", name:"assigned", v:s.mem_assigned, c:"#999"}], fmtB) +
     graph("Disk", t, up, [{id:"disk_rd", name:"read", v:s.disk_rd, c:"#2a9d5c"},
                       {id:"disk_wr", name:"write", v:s.disk_wr, c:"#b3261e"}], bps) +
     graph("Network", t, up, [{id:"net_rx", name:"rx", v:s.net_rx, c:"#7a3bd8"},
                          {id:"net_tx", name:"tx", v:s.net_tx, c:"#d83b9c"}], bps);
}
function select(host, key){ sel = {host, key}; hostsView(); guestsView(); detail().catch(showErr); }
function showErr(e){ $("#status").textContent = "error: "+e.message; }
async function refresh(){
  try{
    data = await get("/live/api/overview");
    const up = data.hosts.filter(h => h.up).length;
    $("#status").textContent = `${data.hosts.length} hosts (${up} up), ${data.guests.length} guests, sampled every ${data.interval} s, updated ${new Date().toLocaleTimeString()}`;
    hostsView(); guestsView(); await detail();
  }catch(e){ showErr(e); }
  clearTimeout(timer);
  timer = setTimeout(refresh, 1000*Math.max(1, Math.min(10, data ? data.interval/2 : 5)));
}
$("#guests tbody").addEventListener("click", e => { const tr = e.target.closest("tr.g");
  if(tr) select(tr.dataset.host, "domain:"+tr.dataset.name); });
for(const th of document.querySelectorAll("th")) th.onclick = () => {
  sort = {k: th.dataset.k, dir: sort.k===th.dataset.k ? -sort.dir : (["n","h","s"].includes(th.dataset.k)?1:-1)};
  if(data) guestsView(); };
let typing = null;
$("#filter").addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(() => data && guestsView(), 150); });
$("#state").addEventListener("change", () => data && guestsView());
refresh();
</script></body></html>
"""
