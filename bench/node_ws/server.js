// The reference fan-out for bench.live --burst: what the original system ran. One process, one Redis
// pattern subscription, each quote sent to every subscriber of its instrument as it arrives (no
// conflation), the same message the hub sends: {"type":"quotes","quotes":[<quote as published>]}.
// It checks no session (the bench's clients are all logged in); that is less work than the hub does.
"use strict";
const http = require("http");
const { WebSocketServer } = require("ws");
const Redis = require("ioredis");

const port = parseInt(process.env.PORT, 10);
const prefix = process.env.PREFIX;
const redis = new Redis(process.env.REDIS_URL || "redis://127.0.0.1:6379/0");
const groups = new Map(); // instrument -> Set of sockets
const head = prefix + ":live:";

const server = http.createServer((req, res) => { res.writeHead(200); res.end("ok"); });
const wss = new WebSocketServer({ server, perMessageDeflate: false });
wss.on("connection", (ws, req) => {
  const q = new URL(req.url, "http://x").searchParams.get("instruments") || "";
  const mine = q.split(",").filter(Boolean);
  for (const s of mine) {
    if (!groups.has(s)) groups.set(s, new Set());
    groups.get(s).add(ws);
  }
  ws.send('{"type":"snapshot","quotes":[],"status":[]}');
  ws.on("message", () => {});
  ws.on("close", () => { for (const s of mine) groups.get(s).delete(ws); });
  ws.on("error", () => {});
});
redis.psubscribe(head + "*");
redis.on("pmessage", (_pattern, channel, data) => {
  const members = groups.get(channel.slice(head.length));
  if (!members) return;
  const text = '{"type":"quotes","quotes":[' + data + "]}";
  for (const ws of members) if (ws.readyState === 1) ws.send(text);
});
server.listen(port, "127.0.0.1", () => console.log("listening " + port));
