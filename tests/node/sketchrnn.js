// Runs sketchgen-exported models in the real @magenta/sketch library, for tests/test_magenta.py.
//
//   node sketchrnn.js PACKAGES REQUEST.json RESULT.json
//
// PACKAGES is the folder whose node_modules holds @magenta/sketch@0.2.0. Each model file is served over
// HTTP on 127.0.0.1 and loaded with `new SketchRNN(url)` and `initialize()`, exactly as a page does.
// REQUEST: {jobs: [{model, seed, temperature, softmax_temperature, inputs, samples, max_len}]}
//   seed: each job draws from its own seeded stream, so a job's drawings do not depend on the jobs run before it.
//   softmax_temperature: passed to getPDF; null leaves the library's own, 0.5 + temperature / 2.
//   inputs: stroke-5 rows [dx, dy, p_down, p_up, p_end] in QuickDraw units, fed after zeroInput();
//           the job's pdfs[t] is getPDF after the t-th input (the first is zeroInput() itself).
//   samples: how many drawings to sample, each as the library's README does: update, getPDF, sample.
// RESULT: {results: [{pixel_factor, pdfs: [{pi, muX, muY, sigmaX, sigmaY, corr, pen}], drawings}]}
//   drawings are lists of stroke-5 rows in QuickDraw units too (the library's pixels times pixelFactor).
'use strict';
const fs = require('fs');
const http = require('http');
const path = require('path');

const [packages, requestPath, resultPath] = process.argv.slice(2);
const request = JSON.parse(fs.readFileSync(requestPath, 'utf8'));

// The library draws with Math.random; a seeded generator (mulberry32), reseeded for each job, makes a run repeatable.
let seed = 0;
Math.random = () => {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

const ms = require(require.resolve('@magenta/sketch', {paths: [packages]}));

// Serves files[i] at /i/<its name>.
function serve(files) {
  const server = http.createServer((req, res) => {
    const file = files[Number(req.url.split('/')[1])];
    if (file === undefined) {
      res.writeHead(404);
      res.end();
      return;
    }
    // No keep-alive: a pooled connection the server has since timed out would fail the next fetch.
    res.writeHead(200, {'Content-Type': 'application/json', 'Connection': 'close'});
    res.end(fs.readFileSync(file));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

function plain(pdf) {
  const n = pdf.pi.length;  // getPDF's sigmaY runs past its 20 values; keep 20 of each
  const out = {};
  for (const key of ['pi', 'muX', 'muY', 'sigmaX', 'sigmaY', 'corr']) out[key] = Array.from(pdf[key].slice(0, n));
  out.pen = Array.from(pdf.pen);
  return out;
}

async function run(job, url) {
  seed = job.seed >>> 0;
  const model = new ms.SketchRNN(url);
  await model.initialize();
  const pf = model.pixelFactor;
  const T = job.temperature;
  const softT = job.softmax_temperature;

  const pdfs = [];
  let state = model.update(model.zeroInput(), model.zeroState());
  pdfs.push(plain(model.getPDF(state, T, softT)));
  for (const row of job.inputs || []) {
    state = model.update([row[0] / pf, row[1] / pf, row[2], row[3], row[4]], state);
    pdfs.push(plain(model.getPDF(state, T, softT)));
  }

  const drawings = [];
  for (let n = 0; n < (job.samples || 0); n++) {
    let rnnState = model.zeroState();
    let x = model.zeroInput();
    const rows = [];
    for (let t = 0; t < job.max_len; t++) {
      rnnState = model.update(x, rnnState);
      x = model.sample(model.getPDF(rnnState, T, softT));
      rows.push([x[0] * pf, x[1] * pf, x[2], x[3], x[4]]);
      if (x[4] === 1) break;
    }
    drawings.push(rows);
  }
  model.dispose();
  return {pixel_factor: pf, pdfs, drawings};
}

async function main() {
  const server = await serve(request.jobs.map((job) => job.model));
  const base = `http://127.0.0.1:${server.address().port}`;
  const results = [];
  for (const [i, job] of request.jobs.entries()) {
    results.push(await run(job, `${base}/${i}/${encodeURIComponent(path.basename(job.model))}`));
  }
  server.close();
  fs.writeFileSync(resultPath, JSON.stringify({results}));
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
