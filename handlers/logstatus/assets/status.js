// The status page: one EventSource with the filters as query parameters;
// a filter change reconnects. User data is only ever set as textContent.
(function () {
	"use strict";
	const maxRows = 1000;
	const form = document.getElementById("filters");
	const tbody = document.querySelector("#records tbody");
	const conn = document.getElementById("conn");
	const apps = new Set();
	let source = null;

	function params() {
		const p = new URLSearchParams();
		for (const el of form.elements) {
			if (el.name && el.value.trim() !== "") p.set(el.name, el.value.trim());
		}
		return p;
	}

	// The most of a value a cell's title shows.
	const maxTitle = 2000;

	// cell adds a cell showing text; with clip, on one line cut with an
	// ellipsis, the value (up to maxTitle characters) in its title.
	function cell(tr, text, cls, clip) {
		const td = document.createElement("td");
		if (cls) td.className = cls;
		text = String(text);
		if (clip) {
			const div = document.createElement("div");
			div.className = "clip";
			div.textContent = text;
			td.title = text.length > maxTitle ? text.slice(0, maxTitle) + "…" : text;
			td.appendChild(div);
		} else {
			td.textContent = text;
		}
		tr.appendChild(td);
	}

	function addRecord(e, live) {
		const tr = document.createElement("tr");
		tr.className = "lvl-" + e.level + (live ? " new" : "");
		tr.dataset.seq = e.seq;
		const t = new Date(e.time);
		cell(tr, isNaN(t) ? e.time : t.toISOString().replace("T", " ").replace("Z", ""), "time");
		cell(tr, e.level_name || e.level, "level", true);
		cell(tr, e.app, "app", true);
		cell(tr, e.facility || "", "facility", true);
		cell(tr, e.host || "", "host", true);
		cell(tr, e.logger || "", "logger", true);
		cell(tr, e.message, "msg");
		tbody.insertBefore(tr, tbody.firstChild);
		while (tbody.rows.length > maxRows) tbody.deleteRow(tbody.rows.length - 1);
		if (!apps.has(e.app)) {
			apps.add(e.app);
			const o = document.createElement("option");
			o.value = e.app;
			document.getElementById("apps").appendChild(o);
		}
		document.getElementById("count").textContent = tbody.rows.length + " shown";
	}

	function fmt(n) { return Number(n).toLocaleString("en-US"); }
	function rate(n) { return Number(n).toFixed(2); }
	function bytes(n) {
		const u = ["B", "KiB", "MiB", "GiB", "TiB"];
		let i = 0;
		while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
		return (i ? n.toFixed(1) : n) + " " + u[i];
	}
	function duration(s) {
		s = Math.floor(s);
		const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
		return (d ? d + "d " : "") + (d || h ? h + "h " : "") + m + "m " + (s % 60) + "s";
	}
	// fillTable shows rows in table id, their first clipCols cells clipped.
	function fillTable(id, rows, clipCols, empty) {
		const body = document.querySelector("#" + id + " tbody");
		body.replaceChildren();
		if (rows.length === 0 && empty) {
			const tr = document.createElement("tr");
			const td = document.createElement("td");
			td.colSpan = 8;
			td.className = "empty";
			td.textContent = empty;
			tr.appendChild(td);
			body.appendChild(tr);
		}
		for (const r of rows) {
			const tr = document.createElement("tr");
			r.forEach((v, i) => cell(tr, v, "", i < clipCols));
			body.appendChild(tr);
		}
	}

	function showStats(s) {
		document.getElementById("uptime").textContent = "up " + duration(s.uptime_seconds);
		const t = s.totals;
		document.getElementById("t-accepted").textContent = fmt(t.accepted);
		document.getElementById("t-rate").textContent = rate(t.rate_per_second);
		document.getElementById("t-filtered").textContent = fmt(t.filtered);
		document.getElementById("t-rejected").textContent = fmt(t.rejected);
		document.getElementById("t-truncated").textContent = fmt(t.truncated);
		document.getElementById("t-dropped").textContent = fmt(t.dropped || 0);
		fillTable("facilities", (s.facilities || []).map(f =>
			[f.name, fmt(f.accepted), fmt(f.filtered), fmt(f.rejected), fmt(f.truncated), rate(f.rate_per_second)]), 1);
		fillTable("sources", (s.sources || []).map(f =>
			[f.name, fmt(f.accepted), fmt(f.rejected), rate(f.rate_per_second)]), 1);
		fillTable("writers", (s.writers || []).map(w =>
			[w.kind, w.name, fmt(w.entries), bytes(w.bytes), fmt(w.errors), fmt(w.dropped), fmt(w.rotations), fmt(w.unplaced || 0), fmt(w.spool_depth),
			 w.spool_depth ? duration(w.spool_oldest_age_seconds) : "–"]), 2,
			"No applog writer has written yet.");
	}

	function connect() {
		if (source) source.close();
		tbody.replaceChildren();
		const p = params();
		p.set("format", "sse");
		let first = true;
		source = new EventSource(location.pathname + "?" + p.toString());
		source.addEventListener("open", () => { conn.textContent = "live"; conn.className = "conn up"; });
		source.addEventListener("error", () => { conn.textContent = "reconnecting…"; conn.className = "conn down"; });
		source.addEventListener("stats", ev => { showStats(JSON.parse(ev.data)); first = false; });
		source.addEventListener("record", ev => addRecord(JSON.parse(ev.data), !first));
	}

	let timer = null;
	form.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(connect, 250); });
	form.addEventListener("submit", ev => ev.preventDefault());
	connect();
})();
