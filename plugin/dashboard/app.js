// Refrain dashboard: reads everything through GraphQL (dashboard.graphql for
// the programs, smaller requests for the previous period, the campaigns and
// the pressure forecast) and draws the charts with uPlot, embedded in the
// binary like this file. Every number shown carries data-program and
// data-kpi attributes so tests can compare it with what the API returns.
"use strict";

(function () {
  var DAY = 864e5;
  var VALUE_FIELDS = "sent delivered uniqueOpens uniqueClicks conversions " +
    "openRate { numerator denominator value } clickRate { numerator denominator value } " +
    "conversionRate { numerator denominator value } revenue { revenue { amount currency } perRecipient }";

  // What each number means, in words a marketer uses.
  var LABELS = {
    sent: ["Sent", "Messages handed to the mail provider."],
    delivered: ["Delivered", "Messages the recipient's mail server accepted."],
    hardBounces: ["Hard bounces", "Refused for good: the address does not exist."],
    softBounces: ["Soft bounces", "Refused for now: a full mailbox, a server down."],
    uniqueOpens: ["Opened", "Messages a person opened, each counted once (a click counts as an open)."],
    machineOpens: ["Machine opens", "Opens by privacy proxies and scanners, kept apart from people."],
    uniqueClicks: ["Clicked", "Messages with at least one link clicked."],
    unsubscribes: ["Unsubscribed", "Recipients who unsubscribed from a message."],
    complaints: ["Spam complaints", "Recipients who reported a message as spam."],
    conversions: ["Orders", "Orders credited to a message (a click or an open shortly before)."],
    goalConversions: ["Goals reached", "Credited orders that were also the program's goal."],
    deliveryRate: ["Delivery rate", "Of the messages sent, the share that was delivered."],
    openRate: ["Open rate", "Of the messages delivered, the share a person opened."],
    clickRate: ["Click rate", "Of the messages delivered, the share with a click."],
    clickToOpenRate: ["Click-to-open rate", "Of the messages opened, the share with a click: how convincing the content was."],
    unsubscribeRate: ["Unsubscribe rate", "Of the messages delivered, the share followed by an unsubscription."],
    complaintRate: ["Complaint rate", "Of the messages delivered, the share reported as spam; above 0.1% mailbox providers start filtering."],
    conversionRate: ["Conversion rate", "Of the messages delivered, the share followed by a credited order."],
  };
  var COUNTERS = ["sent", "delivered", "hardBounces", "softBounces", "uniqueOpens", "machineOpens", "uniqueClicks",
    "unsubscribes", "complaints", "conversions", "goalConversions"];
  var RATES = ["deliveryRate", "openRate", "clickRate", "clickToOpenRate", "unsubscribeRate", "complaintRate", "conversionRate"];
  var HEADLINE = ["sent", "delivered", "openRate", "clickRate", "conversionRate", "conversions"];
  // A rate going up is bad news for these.
  var LOWER_IS_BETTER = { hardBounces: 1, softBounces: 1, unsubscribes: 1, complaints: 1, unsubscribeRate: 1, complaintRate: 1 };
  var SERIES = [["sent", "Sent", "#4263eb"], ["uniqueOpens", "Opened", "#12b886"], ["uniqueClicks", "Clicked", "#f08c00"],
    ["conversions", "Orders", "#d6336c"]];
  var METRIC_NAMES = { OPEN_RATE: "open rate", CLICK_RATE: "click rate", CONVERSION_RATE: "conversion rate" };

  function el(tag, attrs) {
    var e = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        if (attrs[k] !== null && attrs[k] !== undefined) e.setAttribute(k, attrs[k]);
      });
    }
    for (var i = 2; i < arguments.length; i++) append(e, arguments[i]);
    return e;
  }
  function append(e, c) {
    if (c === null || c === undefined || c === false) return;
    if (Array.isArray(c)) { c.forEach(function (x) { append(e, x); }); return; }
    e.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
  }
  function clear(id) {
    var e = document.getElementById(id);
    while (e.firstChild) e.removeChild(e.firstChild);
    return e;
  }

  var numberFormat = new Intl.NumberFormat("en");
  function count(n) { return numberFormat.format(n); }
  function pct(rate) {
    if (!rate || rate.value === null || rate.value === undefined) return "–";
    return (rate.value * 100).toFixed(1) + "%";
  }
  function money(amount, currency) {
    try {
      return new Intl.NumberFormat("en", { style: "currency", currency: currency || "EUR" }).format(amount / 100);
    } catch (e) {
      return (amount / 100).toFixed(2) + " " + (currency || "");
    }
  }
  function day(d) {
    return new Date(d).toLocaleDateString("en-GB", { day: "numeric", month: "short", year: "numeric", timeZone: "UTC" });
  }
  function label(k) { return LABELS[k] ? LABELS[k][0] : k; }
  function explain(k) { return LABELS[k] ? LABELS[k][1] : ""; }
  function revenueTotal(v) {
    return v.revenue.map(function (r) { return money(r.revenue.amount, r.revenue.currency); }).join(" + ") || money(0, "EUR");
  }

  // The change of a number against the previous period: relative for
  // counters, in percentage points for rates.
  function change(k, now, before) {
    if (before === undefined || before === null) return null;
    var diff, text;
    if (RATES.indexOf(k) >= 0) {
      if (now.value === null || before.value === null) return el("span", { class: "change flat" }, "no comparison");
      diff = (now.value - before.value) * 100;
      text = (diff >= 0 ? "+" : "") + diff.toFixed(1) + " pts";
    } else {
      if (before === 0) return el("span", { class: "change flat" }, now === 0 ? "unchanged" : "new");
      diff = (now - before) / before * 100;
      text = (diff >= 0 ? "+" : "") + diff.toFixed(0) + "%";
    }
    var good = LOWER_IS_BETTER[k] ? diff < 0 : diff > 0;
    var cls = Math.abs(diff) < 0.05 ? "flat" : (good ? "up" : "down");
    return el("span", { class: "change " + cls, title: "Previous period: " + (RATES.indexOf(k) >= 0 ? pct(before) : count(before)) },
      text + " vs previous period");
  }

  function valueCell(program, k, v) {
    var x = v[k];
    if (RATES.indexOf(k) >= 0) {
      return el("td", { "data-program": program, "data-kpi": k, "data-numerator": x.numerator, "data-denominator": x.denominator,
        title: count(x.numerator) + " " + label(x.numeratorName ? camel(x.numeratorName) : "") + " of " + count(x.denominator) }, pct(x));
    }
    return el("td", { "data-program": program, "data-kpi": k }, x);
  }
  function camel(s) { return s.replace(/_([a-z])/g, function (_, c) { return c.toUpperCase(); }); }

  // Headline cards: the figure, what it means, and its change.
  function cards(program, v, prev) {
    return el("div", { class: "cards" }, HEADLINE.map(function (k) {
      var shown = RATES.indexOf(k) >= 0 ? pct(v[k]) : count(v[k]);
      return el("div", { class: "card", title: explain(k) },
        el("div", { class: "card-label" }, label(k)),
        el("div", { class: "card-value", "data-program": program, "data-card": k }, shown),
        change(k, v[k], prev ? prev[k] : undefined),
        el("div", { class: "card-help" }, explain(k)));
    }).concat([el("div", { class: "card", title: "Revenue of the orders credited to these messages." },
      el("div", { class: "card-label" }, "Revenue"),
      el("div", { class: "card-value", "data-program": program, "data-card": "revenue" }, revenueTotal(v)),
      prev ? change("revenue", sumRevenue(v), sumRevenue(prev)) : null,
      el("div", { class: "card-help" }, "Revenue of the orders credited to these messages."))]));
  }
  function sumRevenue(v) { return v.revenue.reduce(function (s, r) { return s + r.revenue.amount; }, 0); }

  // Every counter and rate with its label and meaning.
  function detailTable(program, v, prev) {
    var rows = COUNTERS.concat(RATES).filter(function (k) { return v[k] !== undefined; }).map(function (k) {
      return el("tr", null, el("th", { scope: "row" }, label(k)), valueCell(program, k, v),
        el("td", { class: "change-cell" }, prev && prev[k] !== undefined ? change(k, v[k], prev[k]) : null),
        el("td", { class: "help" }, explain(k)));
    });
    return el("details", { class: "all-figures" }, el("summary", null, "Every figure, with what it means"),
      el("table", null, el("tbody", null, rows)), revenueLine(program, v));
  }
  function revenueLine(program, v) {
    return v.revenue.length === 0 ? el("p", { class: "meta" }, "No credited revenue.") :
      el("p", { class: "meta" }, "Credited revenue: ", v.revenue.map(function (r, i) {
        return el("span", { "data-program": program, "data-kpi": "revenue", "data-currency": r.revenue.currency || "" },
          (i ? ", " : ""), money(r.revenue.amount, r.revenue.currency),
          r.perRecipient === null ? "" : " (" + money(r.perRecipient, r.revenue.currency) + " per delivered message)");
      }));
  }

  // A daily chart (uPlot) of sends, opens, clicks and orders, with axes and
  // a tooltip of the hovered day.
  function chart(program, intervals, title) {
    var box = el("div", { class: "chart", "data-program": program, "data-chart": "daily", role: "img", "aria-label": title });
    var tip = el("div", { class: "tooltip", hidden: "" });
    box.appendChild(tip);
    var xs = intervals.map(function (iv) { return Date.parse(iv.start) / 1000; });
    var data = [xs].concat(SERIES.map(function (s) { return intervals.map(function (iv) { return iv.values[s[0]]; }); }));
    requestAnimationFrame(function () {
      var width = Math.max(300, box.clientWidth || 600);
      var opts = {
        width: width, height: 220, tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); },
        legend: { show: true },
        cursor: { points: { size: 6 } },
        scales: { x: { time: true } },
        axes: [{ stroke: "#5b6570", grid: { stroke: "#eceef1" }, values: function (u, ticks) {
          return ticks.map(function (t) { return new Date(t * 1000).toLocaleDateString("en-GB", { day: "numeric", month: "short", timeZone: "UTC" }); });
        } },
          { stroke: "#5b6570", grid: { stroke: "#eceef1" }, size: 50, values: function (u, ticks) { return ticks.map(function (t) { return count(t); }); } }],
        series: [{ label: "Day", value: function (u, ts) { return ts === null ? "" : day(ts * 1000); } }].concat(SERIES.map(function (s) {
          return { label: s[1], stroke: s[2], width: 2, points: { show: false } };
        })),
        hooks: { setCursor: [function (u) {
          var i = u.cursor.idx;
          if (i === null || i === undefined) { tip.hidden = true; return; }
          while (tip.firstChild) tip.removeChild(tip.firstChild);
          append(tip, [el("b", null, day(xs[i] * 1000)), SERIES.map(function (s, j) {
            return el("div", null, el("i", { style: "background:" + s[2] }), s[1] + ": " + count(data[j + 1][i]));
          })]);
          tip.hidden = false;
          var left = u.valToPos(xs[i], "x") + u.over.offsetLeft + 12;
          tip.style.left = Math.min(left, width - 150) + "px";
          tip.style.top = (u.over.offsetTop + 8) + "px";
        }] },
      };
      new uPlot(opts, data, box);
    });
    return box;
  }

  function abTable(program, ab) {
    if (!ab) return el("p", { class: "meta" }, "No A/B test in this period: its messages carry no variant.");
    var metric = METRIC_NAMES[ab.metric] || ab.metric.toLowerCase();
    var winner = ab.variants.filter(function (v) { return v.decision === "BEATS_CONTROL"; })[0];
    var verdict = winner ? "Variant " + winner.variant + " beats " + ab.control + " on " + metric + "." :
      (ab.variants.some(function (v) { return v.decision === "LOSES_TO_CONTROL"; }) ? ab.control + " (the control) stays ahead on " + metric + "." :
        "No verdict yet: too few recipients, or too close to call.");
    var head = el("tr", null, ["Variant", label(camel(ab.metric.toLowerCase())) || metric, "Chance to beat " + ab.control, "Verdict"].map(function (c) { return el("th", null, c); }));
    var rows = ab.variants.map(function (v) {
      return el("tr", { "data-program": program, "data-variant": v.variant },
        el("td", null, v.variant),
        el("td", { title: count(v.rate.numerator) + " of " + count(v.rate.denominator) }, pct(v.rate)),
        el("td", { "data-kpi": "probability", title: v.probabilityToBeatControl.toFixed(3) }, v.probabilityToBeatControl.toFixed(3)),
        el("td", { "data-kpi": "decision", class: v.decision, "data-decision": v.decision }, v.decision));
    });
    return [el("p", { class: "verdict", "data-program": program, "data-kpi": "abVerdict" }, verdict),
      el("table", null, el("thead", null, head), el("tbody", null, rows)),
      el("p", { class: "meta" }, "A verdict needs " + count(ab.minSample) + " delivered messages per variant and a " + (ab.threshold * 100) + "% chance.")];
  }

  function holdoutTable(program, ho) {
    if (!ho) return null;
    var est = function (e, scale, unit) {
      return e ? (e.estimate >= 0 ? "+" : "") + (e.estimate * scale).toFixed(1) + unit + " (95%: " + (e.low * scale).toFixed(1) + " to " + (e.high * scale).toFixed(1) + unit + ")" : "–";
    };
    var rows = [el("tr", null, el("th", { scope: "row" }, "Reached the goal"), valueCell(program, "treatedConversion", ho),
      valueCell(program, "holdoutConversion", ho), el("td", { "data-program": program, "data-kpi": "conversionUplift" }, est(ho.conversionUplift, 100, " pts")))];
    ho.revenuePerCustomer.forEach(function (r) {
      rows.push(el("tr", null, el("th", { scope: "row" }, "Revenue per customer"),
        el("td", null, money(r.treated, r.currency)), el("td", null, money(r.holdout, r.currency)),
        el("td", null, r.uplift ? (r.uplift.estimate >= 0 ? "+" : "") + money(r.uplift.estimate, r.currency) + " (95%: " + money(r.uplift.low, r.currency) + " to " + money(r.uplift.high, r.currency) + ")" : "–")));
    });
    return [el("h3", null, "Holdout: does the program make a difference?"),
      el("p", { class: "meta" }, ho.holdoutPercent + "% of entrants get nothing, to compare with: " + count(ho.treatedCustomers) +
        " received the program, " + count(ho.holdoutCustomers) + " were held out."),
      el("table", null, el("thead", null, el("tr", null, ["", "Received", "Held out", "Uplift"].map(function (c) { return el("th", null, c); }))),
        el("tbody", null, rows))];
  }
  RATES.push("treatedConversion", "holdoutConversion");

  function programCard(p, prev) {
    return el("article", { "data-program": p.id, id: "program-" + p.id },
      el("h3", { class: "program-title" }, p.title, " ", el("small", { class: "meta" }, p.status.toLowerCase())),
      el("p", { class: "meta" }, "Objective: ", el("b", { "data-program": p.id, "data-kpi": "objective" }, p.objective),
        p.kpi ? [" · Measured by: ", p.kpi] : "", p.goal ? [" · Goal: ", p.goal] : ""),
      p.audience ? el("p", { class: "meta" }, "Who enters: ", el("code", null, p.audience)) : null,
      cards(p.id, p.stats.total, prev),
      chart(p.id, p.stats.intervals, "Daily sends, opens, clicks and orders of " + p.title),
      detailTable(p.id, p.stats.total, prev),
      el("h3", null, "A/B test"), abTable(p.id, p.abTest),
      holdoutTable(p.id, p.holdout));
  }

  function revenueSection(programs, campaigns) {
    var rows = [];
    programs.forEach(function (p) {
      var v = p.stats.total;
      if (v.sent === 0 && v.revenue.length === 0) return;
      rows.push(revenueRow("Program", p.title, p.id, v));
    });
    campaigns.forEach(function (c) { rows.push(revenueRow("Campaign", c.name, "campaign:" + c.id, c.stats.total)); });
    rows.sort(function (a, b) { return b.amount - a.amount; });
    var body = clear("revenue-body");
    if (!rows.length) { body.appendChild(el("p", { class: "meta" }, "No message sent in this period.")); return; }
    body.appendChild(el("table", { class: "wide" }, el("thead", null, el("tr", null,
      ["", "Name", "Revenue", "Orders", "Delivered", "Revenue per delivered message"].map(function (h) { return el("th", null, h); }))),
      el("tbody", null, rows.map(function (r) { return r.row; }))));
  }
  function revenueRow(kind, name, key, v) {
    var per = v.revenue.map(function (r) { return r.perRecipient === null ? "–" : money(r.perRecipient, r.revenue.currency); }).join(" + ") || "–";
    return { amount: sumRevenue(v), row: el("tr", { "data-revenue-of": key },
      el("td", { class: "meta" }, kind), el("td", null, name),
      el("td", { "data-revenue-of": key, "data-kpi": "revenue" }, revenueTotal(v)),
      el("td", null, count(v.conversions)), el("td", null, count(v.delivered)), el("td", null, per)) };
  }

  // Campaigns: their progress, results and A/B verdict.
  function campaignsSection(campaigns, variants) {
    var body = clear("campaigns-body");
    if (!campaigns.length) { body.appendChild(el("p", { class: "meta" }, "No campaign yet.")); return; }
    body.appendChild(el("div", { class: "grid" }, campaigns.map(function (c) {
      var v = c.stats.total;
      var when = c.finishedAt ? "sent " + day(c.finishedAt) : (c.startedAt ? "started " + day(c.startedAt) : (c.scheduledAt ? "scheduled for " + day(c.scheduledAt) : "not scheduled"));
      return el("article", { "data-campaign": c.id },
        el("h3", null, c.name, " ", el("small", { class: "meta" }, c.status.toLowerCase() + ", " + when)),
        el("p", { class: "meta" }, "Objective: " + c.objective + " · Audience: " + c.segment + " · " +
          count(c.audienceCount) + " recipients, " + count(c.sentCount) + " sent, " + count(c.skippedCount) + " skipped by the pressure policy, " +
          count(c.pendingCount) + " pending"),
        el("table", null, el("tbody", null, ["sent", "delivered", "openRate", "clickRate", "conversionRate"].map(function (k) {
          return el("tr", null, el("th", { scope: "row", title: explain(k) }, label(k)), valueCell("campaign:" + c.id, k, v));
        }).concat([el("tr", null, el("th", { scope: "row" }, "Revenue"), el("td", { "data-program": "campaign:" + c.id, "data-kpi": "revenue" }, revenueTotal(v)))]))),
        campaignAB(c, variants[c.id] || []));
    })));
  }
  function campaignAB(c, vs) {
    if (!c.abTest) return el("p", { class: "meta" }, "No A/B test.");
    var metric = (c.abTest.winnerMetric || "").toLowerCase().replace(/_/g, " ");
    var rateKey = { "open rate": "openRate", "click rate": "clickRate", "conversion rate": "conversionRate" }[metric] || "openRate";
    var verdict = c.winner ? "Winner: variant " + c.winner + " (best " + metric + "), sent to the rest of the audience." :
      "No winner yet: it is picked " + c.abTest.decideAfter + " after the start, on " + metric + ".";
    return [el("h4", null, "A/B test: " + Math.round(c.abTest.testShare * 100) + "% of the audience tried " + c.abTest.variants.length + " variants"),
      el("p", { class: "verdict", "data-campaign": c.id, "data-kpi": "winner" }, verdict),
      el("table", null, el("thead", null, el("tr", null, ["Variant", "Delivered", label(rateKey), ""].map(function (h) { return el("th", null, h); }))),
        el("tbody", null, vs.map(function (x) {
          return el("tr", { "data-campaign": c.id, "data-variant": x.name },
            el("td", null, x.name), el("td", null, count(x.values.delivered)),
            el("td", { "data-kpi": rateKey }, pct(x.values[rateKey])),
            el("td", { class: x.name === c.winner ? "BEATS_CONTROL" : "" }, x.name === c.winner ? "winner" : ""));
        })))];
  }

  // The pressure calendar: the next 13 weeks in weeks starting on Monday,
  // each day with its date and planned sends; a click shows the programs.
  function calendar(days) {
    var max = 1;
    days.forEach(function (d) { max = Math.max(max, d.sends); });
    var first = new Date(days[0].date);
    var lead = (first.getUTCDay() + 6) % 7; // days since Monday
    var cells = [];
    for (var i = 0; i < lead; i++) cells.push(el("div", { class: "cal-cell empty" }));
    days.forEach(function (d) {
      var level = d.sends === 0 ? 0 : Math.min(4, 1 + Math.floor(3 * d.sends / max));
      var cell = el("button", { type: "button", class: "cal-cell day l" + level + (d.overCap > 0 ? " over" : ""),
        "data-date": d.date.slice(0, 10), "data-sends": d.sends, "data-over-cap": d.overCap,
        title: day(d.date) + ": " + count(d.sends) + " sends planned" + (d.overCap ? ", " + d.overCap + " customers over the cap" : "") },
        el("span", { class: "cal-date" }, new Date(d.date).toLocaleDateString("en-GB", { day: "numeric", month: "short", timeZone: "UTC" })),
        el("span", { class: "cal-count" }, count(d.sends)),
        d.expected >= 0.5 ? el("span", { class: "cal-expected" }, "+" + Math.round(d.expected) + " exp.") : null);
      cell.addEventListener("click", function () { showDay(d, cell); });
      cells.push(cell);
    });
    var head = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"].map(function (w) { return el("div", { class: "cal-head" }, w); });
    var legend = el("p", { class: "legend cal-legend" }, "Sends planned per day: ",
      [0, 1, 2, 3, 4].map(function (l) { return el("span", null, el("i", { class: "l" + l }), ["none", "few", "some", "many", "most"][l]); }),
      el("span", null, el("i", { class: "over-key" }), "customers pushed over the pressure cap"),
      " · “exp.”: sends expected from customers who have not entered yet. Click a day for its programs.");
    return [legend, el("div", { class: "cal", "data-chart": "calendar" }, head, cells), el("div", { id: "calendar-detail", class: "meta" }, "Click a day to see its programs.")];
  }
  function showDay(d, cell) {
    document.querySelectorAll(".cal-cell.selected").forEach(function (e) { e.classList.remove("selected"); });
    cell.classList.add("selected");
    var box = clear("calendar-detail");
    var progs = d.programs.filter(function (p) { return p.planned || p.sends || p.deferred || p.skipped || p.expected >= 0.05; });
    append(box, [el("h3", null, day(d.date) + ": " + count(d.sends) + " sends" + (d.overCap ? ", " + d.overCap + " customers over the cap" : "")),
      progs.length === 0 ? el("p", null, "Nothing planned.") :
        el("table", { "data-breakdown": d.date.slice(0, 10) }, el("thead", null, el("tr", null,
          ["Program", "Planned", "Sent after the policy", "Deferred", "Skipped", "Expected from new entries"].map(function (h) { return el("th", null, h); }))),
          el("tbody", null, progs.map(function (p) {
            return el("tr", { "data-program": p.program }, el("td", null, p.program), el("td", null, p.planned), el("td", { "data-kpi": "sends" }, p.sends),
              el("td", null, p.deferred), el("td", null, p.skipped), el("td", null, p.expected.toFixed(1)));
          })))]);
  }

  function loadCalendar() {
    var note = document.getElementById("calendar-note");
    if (document.body.getAttribute("data-forecast") !== "true") {
      note.textContent = "The pressure forecast is not in this build.";
      return;
    }
    var today = new Date();
    today.setUTCHours(0, 0, 0, 0);
    note.textContent = "The marketing mail planned for the next 13 weeks, after the pressure policy.";
    var q = "query($from: DateTime!, $to: DateTime!) { refrain { pressureForecast(from: $from, to: $to) { days { date sends expected overCap " +
      "programs { program planned sends deferred skipped expected } } } } }";
    gql(q, { from: today.toISOString(), to: new Date(today.getTime() + 91 * DAY).toISOString() }).then(function (data) {
      append(clear("calendar-body"), calendar(data.refrain.pressureForecast.days));
      document.getElementById("calendar").setAttribute("data-loaded", "true");
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

  // The previous period's totals, for the changes.
  function previous(from, to, tz) {
    var q = "query($from: DateTime!, $to: DateTime!, $timeZone: String) { refrain { kpis(from: $from, to: $to, timeZone: $timeZone) { total { " +
      COUNTERS.join(" ") + " " + RATES.slice(0, 7).map(function (r) { return r + " { numerator denominator value }"; }).join(" ") +
      " revenue { revenue { amount currency } } } } programs { id stats(from: $from, to: $to, timeZone: $timeZone) { total { " + VALUE_FIELDS + " } } } } }";
    return gql(q, { from: from.toISOString(), to: to.toISOString(), timeZone: tz });
  }
  function overviewDaily(from, to, tz) {
    var q = "query($from: DateTime!, $to: DateTime!, $timeZone: String) { refrain { kpis(from: $from, to: $to, interval: DAY, timeZone: $timeZone) { " +
      "intervals { start values { sent uniqueOpens uniqueClicks conversions } } } } }";
    return gql(q, { from: from.toISOString(), to: to.toISOString(), timeZone: tz });
  }
  function campaigns(from, to, tz) {
    var q = "query($from: DateTime!, $to: DateTime!, $timeZone: String) { refrain { campaigns(first: 50) { nodes { " +
      "id name objective segment status scheduledAt startedAt finishedAt audienceCount sentCount skippedCount pendingCount winner " +
      "abTest { testShare winnerMetric decideAfter variants { name } } " +
      "stats(from: $from, to: $to, timeZone: $timeZone) { total { " + VALUE_FIELDS + " } } } } } }";
    return gql(q, { from: from.toISOString(), to: to.toISOString(), timeZone: tz }).then(function (data) {
      var list = data.refrain.campaigns.nodes;
      var parts = [], vars = { from: from.toISOString(), to: to.toISOString() }, decl = ["$from: DateTime!", "$to: DateTime!"], keys = [];
      list.forEach(function (c, i) {
        if (!c.abTest) return;
        vars["c" + i] = c.id;
        decl.push("$c" + i + ": String!");
        c.abTest.variants.forEach(function (v, j) {
          vars["v" + i + "_" + j] = v.name;
          decl.push("$v" + i + "_" + j + ": String!");
          parts.push("a" + i + "_" + j + ": kpis(filter: {campaign: $c" + i + ", variant: $v" + i + "_" + j + "}, from: $from, to: $to) { total { " + VALUE_FIELDS + " } }");
          keys.push([c.id, v.name, "a" + i + "_" + j]);
        });
      });
      if (!parts.length) return { list: list, variants: {} };
      return gql("query(" + decl.join(", ") + ") { refrain { " + parts.join(" ") + " } }", vars).then(function (d) {
        var variants = {};
        keys.forEach(function (k) { (variants[k[0]] = variants[k[0]] || []).push({ name: k[1], values: d.refrain[k[2]].total }); });
        return { list: list, variants: variants };
      });
    });
  }

  // The period: ?days=N, or ?from=&to= (a custom range, dates or times),
  // else the last 30 days up to the end of today (UTC).
  function period(params) {
    var end = new Date();
    end.setUTCHours(24, 0, 0, 0);
    var days = parseInt(params.get("days") || "30", 10);
    var to = params.get("to") ? new Date(params.get("to")) : end;
    var from = params.get("from") ? new Date(params.get("from")) : new Date(to.getTime() - days * DAY);
    return { from: from, to: to, custom: !!(params.get("from") || params.get("to")), days: days };
  }

  function picker(p) {
    var select = document.getElementById("range");
    var fromIn = document.getElementById("range-from"), toIn = document.getElementById("range-to");
    select.value = p.custom ? "custom" : String(p.days);
    if (select.value === "") select.value = "30";
    fromIn.value = p.from.toISOString().slice(0, 10);
    toIn.value = new Date(p.to.getTime() - 1).toISOString().slice(0, 10);
    document.getElementById("picker").addEventListener("submit", function (e) { e.preventDefault(); });
    var customBox = document.getElementById("custom-range");
    customBox.hidden = select.value !== "custom";
    select.addEventListener("change", function () {
      if (select.value === "custom") { customBox.hidden = false; return; }
      location.search = "?days=" + select.value;
    });
    document.getElementById("range-apply").addEventListener("click", function () {
      var to = new Date(toIn.value + "T00:00:00Z");
      location.search = "?from=" + fromIn.value + "T00:00:00Z&to=" + new Date(to.getTime() + DAY).toISOString().slice(0, 19) + "Z";
    });
  }

  function start() {
    var params = new URLSearchParams(location.search);
    var tz = params.get("timeZone") || "UTC";
    var p = period(params);
    picker(p);
    var span = p.to.getTime() - p.from.getTime();
    var prevFrom = new Date(p.from.getTime() - span), prevTo = p.from;
    var status = document.getElementById("status");
    document.getElementById("period").textContent = day(p.from) + " to " + day(p.to.getTime() - 1) + ", compared with " +
      day(prevFrom) + " to " + day(prevTo.getTime() - 1) + " (" + tz + ")";
    var main = fetch("dashboard/dashboard.graphql", { credentials: "same-origin" })
      .then(function (r) { return r.text(); })
      .then(function (query) { return gql(query, { from: p.from.toISOString(), to: p.to.toISOString(), timeZone: tz }); });
    var camp = campaigns(p.from, p.to, tz).catch(function (err) { return { error: err, list: [], variants: {} }; });
    Promise.all([main, previous(prevFrom, prevTo, tz), overviewDaily(p.from, p.to, tz), camp])
      .then(function (res) {
        var r = res[0].refrain, prev = res[1].refrain, daily = res[2].refrain.kpis.intervals, c = res[3];
        var prevOf = {};
        prev.programs.forEach(function (x) { prevOf[x.id] = x.stats.total; });
        append(clear("overview-body"), [cards("all", r.kpis.total, prev.kpis.total),
          chart("all", daily, "Daily sends, opens, clicks and orders of every message"), detailTable("all", r.kpis.total, prev.kpis.total)]);
        revenueSection(r.programs, c.list);
        var active = r.programs.filter(function (x) { return x.stats.total.sent > 0 || x.abTest || (x.holdout && x.holdout.treatedCustomers + x.holdout.holdoutCustomers > 0); });
        var idle = r.programs.filter(function (x) { return active.indexOf(x) < 0; });
        append(clear("programs-body"), [el("div", { class: "grid" }, active.map(function (x) { return programCard(x, prevOf[x.id]); })),
          idle.length ? el("details", { class: "idle" }, el("summary", null, idle.length + " programs sent nothing in this period"),
            el("ul", null, idle.map(function (x) {
              return el("li", { "data-program": x.id, "data-idle": "true" }, el("b", null, x.title), " (" + x.status.toLowerCase() + ", objective ",
                el("span", { "data-program": x.id, "data-kpi": "objective" }, x.objective), ")");
            }))) : null]);
        if (c.error) {
          clear("campaigns-body").appendChild(el("p", { class: "meta" }, "Campaigns could not be read: " + c.error.message));
        } else {
          campaignsSection(c.list, c.variants);
        }
        document.body.setAttribute("data-loaded", "true");
      })
      .catch(function (err) {
        status.className = "error";
        status.textContent = "The dashboard could not load: " + err.message;
        document.body.setAttribute("data-loaded", "error");
      });
    loadCalendar();
  }

  start();
})();
