// Driver for python -m bench.lighthouse: one headless Debian chromium, Lighthouse's mobile defaults, every
// URL given run N times; prints one JSON line per run (scores, metrics, the audits that lost points).
// Usage: CHROME_PATH=/usr/bin/chromium node bench/lighthouse_run.mjs RUNS URL...
// With LIGHTHOUSE_JSON_DIR set, each run's whole report is written there too (NNN.json, in run order), and
// with LIGHTHOUSE_TRACES as well, what Lantern needs to recompute its metrics (NNN.json.artifacts: trace, log).
import { writeFileSync } from "node:fs";
import * as chromeLauncher from "chrome-launcher";
import lighthouse from "lighthouse";

const [runsArg, ...urls] = process.argv.slice(2);
const runs = Number.parseInt(runsArg, 10) || 1;
// The machine has no internet: nothing in the background may try to reach it.
const chromeFlags = [
  "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--disable-default-apps", "--disable-extensions",
  "--disable-domain-reliability", "--metrics-recording-only", "--no-default-browser-check",
];
const chrome = await chromeLauncher.launch({ chromePath: process.env.CHROME_PATH || "/usr/bin/chromium", chromeFlags });
let saved = 0;
try {
  for (const url of urls) {
    for (let i = 0; i < runs; i++) {
      let lhr;
      let artifacts;
      // A trace now and then comes back without a navigation start (NO_NAVSTART) on a busy machine:
      // Lighthouse itself says to run again.
      for (let attempt = 0; attempt < 3; attempt++) {
        const result = await lighthouse(url, {
          port: chrome.port,
          output: "json",
          logLevel: "error",
          onlyCategories: ["performance", "accessibility", "best-practices", "seo"],
          disableFullPageScreenshot: true,
        });
        lhr = result.lhr;
        artifacts = result.artifacts;
        if (!lhr.runtimeError) break;
      }
      if (process.env.LIGHTHOUSE_JSON_DIR) {
        const name = `${String(saved++).padStart(3, "0")}.json`;
        writeFileSync(`${process.env.LIGHTHOUSE_JSON_DIR}/${name}`, JSON.stringify(lhr));
        if (process.env.LIGHTHOUSE_TRACES) {
          const { Trace, DevtoolsLog, GatherContext, URL, SourceMaps } = artifacts;
          writeFileSync(
            `${process.env.LIGHTHOUSE_JSON_DIR}/${name}.artifacts`,
            JSON.stringify({ Trace, DevtoolsLog, GatherContext, URL, SourceMaps, settings: lhr.configSettings }),
          );
        }
      }
      const scores = {};
      const lost = [];
      for (const [id, cat] of Object.entries(lhr.categories)) {
        scores[id] = Math.round((cat.score ?? 0) * 100);
        for (const ref of cat.auditRefs) {
          const audit = lhr.audits[ref.id];
          if (ref.weight > 0 && audit.score !== null && audit.score < 1) {
            lost.push(`${id}:${ref.id}=${audit.score}${audit.displayValue ? ` (${audit.displayValue})` : ""}`);
          }
        }
      }
      const metric = (id) => lhr.audits[id]?.numericValue ?? null;
      console.log(JSON.stringify({
        url,
        run: i,
        scores,
        lcp_ms: metric("largest-contentful-paint"),
        cls: metric("cumulative-layout-shift"),
        tbt_ms: metric("total-blocking-time"),
        ttfb_ms: metric("server-response-time"),
        benchmark_index: lhr.environment?.benchmarkIndex ?? 0,
        lost,
        warnings: lhr.runWarnings,
        error: lhr.runtimeError?.message ?? null,
      }));
    }
  }
} finally {
  await chrome.kill();
}
