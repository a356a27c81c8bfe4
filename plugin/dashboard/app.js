// Refrain dashboard: one GraphQL request (dashboard.graphql) for every
// program's KPIs over the last 90 days, drawn in plain SVG. No build step,
// no third-party code. Every number shown carries data-program and data-kpi
// attributes so tests can compare it with what the API returns.
"use strict";

(function () {
  var SVG = "http://www.w3.org/2000/svg";
  var DAYS = 90;

  function el(tag, attrs) {
    var e = document.createElement(tag);
    setAttrs(e, attrs);
    for (var i = 2; i < arguments.length; i++) append(e, arguments[i]);
    return e;
  }
  function svg(tag, attrs) {
    var e = document.createElementNS(SVG, tag);
    setAttrs(e, attrs);
    for (var i = 2; i < arguments.length; i++) append(e, arguments[i]);
    return e;
  }
  function setAttrs(e, attrs) {
    if (!attrs) return;
    Object.keys(attrs).forEach(function (k) {
      if (attrs[k] !== null && attrs[k] !== undefined) e.setAttribute(k, attrs[k]);
    });
  }
  function append(e, c) {
    if (c === null || c === undefined) return;
    if (Array.isArray(c)) { c.forEach(function (x) { append(e, x); }); return; }
    e.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
  }

  function pct(rate) {
    if (!rate || rate.value === null || rate.value === undefined) return "–";
    return (rate.value * 100).toFixed(1) + "%";
  }
  function rateTitle(rate) {
    return rate ? rate.numeratorName + " / " + rate.denominatorName + " = " + rate.numerator + " / " + rate.denominator : "";
  }
  function money(m) {
    return (m.amount / 100).toFixed(2) + " " + (m.currency || "");
  }

  // A cell holding one number, tagged for tests.
  function num(program, kpi, value) {
    return el("td", { "data-program": program, "data-kpi": kpi }, value);
  }
  function rateCell(program, kpi, rate) {
    return el("td", { "data-program": program, "data-kpi": kpi, title: rateTitle(rate),
      "data-numerator": rate ? rate.numerator : null, "data-denominator": rate ? rate.denominator : null }, pct(rate));
  }

  var COUNTERS = ["sent", "delivered", "hardBounces", "softBounces", "uniqueOpens", "machineOpens", "uniqueClicks",
    "unsubscribes", "complaints", "conversions", "goalConversions"];
  var RATES = ["deliveryRate", "openRate", "clickRate", "clickToOpenRate", "unsubscribeRate", "complaintRate", "conversionRate"];

  function revenueLine(program, v) {
    return v.revenue.length === 0 ? el("p", { class: "meta" }, "No attributed revenue.") :
      el("p", { class: "meta" }, "Attributed revenue: ", v.revenue.map(function (r, i) {
        return el("span", { "data-program": program, "data-kpi": "revenue", "data-currency": r.revenue.currency || "" },
          (i ? ", " : ""), money(r.revenue),
          r.perRecipient === null ? "" : " (" + (r.perRecipient / 100).toFixed(4) + " per recipient)");
      }));
  }

  // The counters and rates: wide (one row each) for the overview, two
  // narrow name/value tables in a program card.
  function valuesTable(program, v, wide) {
    if (wide) {
      var head = el("tr", null, COUNTERS.map(function (c) { return el("th", null, c); }));
      var row = el("tr", null, COUNTERS.map(function (c) { return num(program, c, v[c]); }));
      var rhead = el("tr", null, RATES.map(function (c) { return el("th", null, c); }));
      var rrow = el("tr", null, RATES.map(function (c) { return rateCell(program, c, v[c]); }));
      return el("div", { class: "scroll" }, el("table", null, el("thead", null, head), el("tbody", null, row)),
        el("table", null, el("thead", null, rhead), el("tbody", null, rrow)), revenueLine(program, v));
    }
    var counters = el("table", null, el("tbody", null, COUNTERS.map(function (c) {
      return el("tr", null, el("th", null, c), num(program, c, v[c]));
    })));
    var rates = el("table", null, el("tbody", null, RATES.map(function (c) {
      return el("tr", null, el("th", null, c), rateCell(program, c, v[c]), el("td", { class: "meta" }, v[c].numerator + "/" + v[c].denominator));
    })));
    return [el("div", { class: "kv" }, counters, rates), revenueLine(program, v)];
  }

  var SERIES = [["sent", "#5c7cfa"], ["uniqueOpens", "#20c997"], ["uniqueClicks", "#f59f00"], ["conversions", "#e8590c"]];

  // A line chart of the daily values.
  function chart(program, intervals) {
    var w = 640, h = 160, pad = 28;
    var max = 1;
    intervals.forEach(function (iv) {
      SERIES.forEach(function (s) { max = Math.max(max, iv.values[s[0]]); });
    });
    var n = Math.max(1, intervals.length - 1);
    var x = function (i) { return pad + (w - 2 * pad) * i / n; };
    var y = function (v) { return h - pad - (h - 2 * pad) * v / max; };
    var root = svg("svg", { viewBox: "0 0 " + w + " " + h, width: "100%", role: "img",
      "aria-label": "Daily sends, opens, clicks and conversions of " + program, "data-program": program, "data-chart": "daily" });
    root.appendChild(svg("line", { x1: pad, y1: h - pad, x2: w - pad, y2: h - pad, stroke: "#ced4da" }));
    root.appendChild(svg("text", { x: 2, y: pad }, String(max)));
    root.appendChild(svg("text", { x: 2, y: h - pad }, "0"));
    if (intervals.length) {
      root.appendChild(svg("text", { x: pad, y: h - 8 }, intervals[0].start.slice(0, 10)));
      root.appendChild(svg("text", { x: w - pad - 60, y: h - 8 }, intervals[intervals.length - 1].start.slice(0, 10)));
    }
    SERIES.forEach(function (s) {
      var pts = intervals.map(function (iv, i) { return x(i).toFixed(1) + "," + y(iv.values[s[0]]).toFixed(1); }).join(" ");
      root.appendChild(svg("polyline", { points: pts, fill: "none", stroke: s[1], "stroke-width": 1.5, "data-series": s[0] }));
    });
    var legend = el("p", { class: "legend" }, SERIES.map(function (s) {
      return el("span", null, el("i", { style: "background:" + s[1] }), s[0]);
    }));
    return [root, legend];
  }

  function abTable(program, ab) {
    if (!ab) return el("p", { class: "meta" }, "No A/B test: its messages carry no variant.");
    var head = el("tr", null, ["variant", ab.metric.toLowerCase(), "P(beats " + ab.control + ")", "decision"].map(function (c) { return el("th", null, c); }));
    var rows = ab.variants.map(function (v) {
      return el("tr", { "data-program": program, "data-variant": v.variant },
        el("td", null, v.variant),
        el("td", { title: v.rate.numerator + " / " + v.rate.denominator }, pct(v.rate)),
        el("td", { "data-kpi": "probability" }, v.probabilityToBeatControl.toFixed(3)),
        el("td", { "data-kpi": "decision", class: v.decision }, v.decision));
    });
    return [el("p", { class: "meta" }, "Decided at " + ab.minSample + " delivered per variant and " + (ab.threshold * 100) + "% probability."),
      el("table", null, el("thead", null, head), el("tbody", null, rows))];
  }

  function holdoutTable(program, ho) {
    if (!ho) return null;
    var est = function (e) { return e ? e.estimate.toFixed(3) + " [" + e.low.toFixed(3) + ", " + e.high.toFixed(3) + "]" : "–"; };
    var rows = [el("tr", null, el("td", null, "goal conversion"), rateCell(program, "treatedConversion", ho.treatedConversion),
      rateCell(program, "holdoutConversion", ho.holdoutConversion), el("td", { "data-program": program, "data-kpi": "conversionUplift" }, est(ho.conversionUplift)))];
    ho.revenuePerCustomer.forEach(function (r) {
      rows.push(el("tr", null, el("td", null, "revenue per customer (" + r.currency + ", minor units)"),
        el("td", null, r.treated.toFixed(1)), el("td", null, r.holdout.toFixed(1)), el("td", null, est(r.uplift))));
    });
    return [el("h3", null, "Holdout (" + ho.holdoutPercent + "%): " + ho.treatedCustomers + " treated, " + ho.holdoutCustomers + " held out"),
      el("table", null, el("thead", null, el("tr", null, ["", "treated", "holdout", "uplift [95%]"].map(function (c) { return el("th", null, c); }))),
        el("tbody", null, rows))];
  }

  function program(p) {
    return el("article", { "data-program": p.id },
      el("h2", null, p.title + " ", el("small", { class: "meta" }, "(" + p.id + ", " + p.status.toLowerCase() + ")")),
      el("p", { class: "meta" }, "Objective: ", el("b", { "data-program": p.id, "data-kpi": "objective" }, p.objective),
        " · Audience: ", p.audience || "everyone", " · KPI: ", el("b", null, p.kpi || "–"), p.goal ? " · Goal: " + p.goal : ""),
      chart(p.id, p.stats.intervals),
      valuesTable(p.id, p.stats.total),
      el("h3", null, "A/B test"), abTable(p.id, p.abTest),
      holdoutTable(p.id, p.holdout));
  }

  // The pressure calendar: the forecast per day against the cap. The
  // forecast comes from the campaigns work (pressureForecast); the server
  // says whether this build has it.
  function calendar(days) {
    var size = 14, gap = 3, cols = 7;
    var rows = Math.ceil(days.length / cols);
    var root = svg("svg", { viewBox: "0 0 " + (cols * (size + gap) + 40) + " " + (rows * (size + gap) + 10), width: "320", "data-chart": "calendar" });
    days.forEach(function (d, i) {
      var cls = d.overCap > 0 ? "over" : (d.sends > 0 ? "under" : "none");
      var r = svg("rect", { x: (i % cols) * (size + gap), y: Math.floor(i / cols) * (size + gap), width: size, height: size, class: "day " + cls,
        "data-date": d.date, "data-sends": d.sends, "data-over-cap": d.overCap });
      r.appendChild(svg("title", null, d.date.slice(0, 10) + ": " + d.sends + " sends planned, " + Math.round(d.expected) +
        " expected from new entries, " + d.overCap + " customers over the cap"));
      root.appendChild(r);
    });
    return root;
  }

  function loadCalendar(from, to) {
    var note = document.getElementById("calendar-note");
    if (document.body.getAttribute("data-forecast") !== "true") {
      note.textContent = "The pressure forecast (pressureForecast) is not in this build yet; the calendar appears once it is.";
      return;
    }
    note.textContent = "Forecast per day against the cap.";
    var q = "query($from: DateTime!, $to: DateTime!) { refrain { pressureForecast(from: $from, to: $to) { days { date sends expected overCap } } } }";
    gql(q, { from: from, to: to }).then(function (data) {
      document.getElementById("calendar-body").appendChild(calendar(data.refrain.pressureForecast.days));
    }).catch(function (err) { note.textContent = "The forecast could not be read: " + err.message; });
  }

  function gql(query, variables) {
    return fetch("dashboard/graphql", { method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify({ query: query, variables: variables }) })
      .then(function (r) { return r.json(); })
      .then(function (body) {
        if (body.errors && body.errors.length) throw new Error(body.errors.map(function (e) { return e.message; }).join("; "));
        return body.data;
      });
  }

  function start() {
    var params = new URLSearchParams(location.search);
    var tz = params.get("timeZone") || "UTC";
    var to = new Date();
    to.setUTCHours(24, 0, 0, 0);
    var from = new Date(to.getTime() - DAYS * 864e5);
    if (params.get("to")) to = new Date(params.get("to"));
    if (params.get("from")) from = new Date(params.get("from"));
    var status = document.getElementById("status");
    fetch("dashboard/dashboard.graphql", { credentials: "same-origin" })
      .then(function (r) { return r.text(); })
      .then(function (query) { return gql(query, { from: from.toISOString(), to: to.toISOString(), timeZone: tz }); })
      .then(function (data) {
        var r = data.refrain;
        document.getElementById("period").textContent = "From " + from.toISOString().slice(0, 10) + " to " + to.toISOString().slice(0, 10) + " (" + tz + ")";
        append(document.getElementById("overview"), [el("h2", null, "All messages"), valuesTable("all", r.kpis.total, true)]);
        append(document.getElementById("programs"), el("div", { class: "grid" }, r.programs.map(program)));
        document.body.setAttribute("data-loaded", "true");
      })
      .catch(function (err) {
        status.className = "error";
        status.textContent = "The dashboard could not load: " + err.message;
        document.body.setAttribute("data-loaded", "error");
      });
    // The calendar looks ahead: the next 13 weeks from today (UTC).
    var today = new Date();
    today.setUTCHours(0, 0, 0, 0);
    loadCalendar(today.toISOString(), new Date(today.getTime() + 91 * 86400000).toISOString());
  }

  start();
})();
