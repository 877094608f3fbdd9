// The binding runs on wasm/ABI.md's minimal WASI shim, verbatim, and needs
// nothing from Node.js on the path a browser takes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const abiMd = readFileSync(new URL('../../../wasm/ABI.md', import.meta.url), 'utf8');
const indexJs = readFileSync(new URL('../index.js', import.meta.url), 'utf8');

test('index.js carries the minimal shim of ABI.md byte for byte', () => {
  const page = /<!-- minimal-shim:start -->\n```js\n([\s\S]*?)```\n<!-- minimal-shim:end -->/.exec(abiMd);
  const code = /\/\/ minimal-shim:start\n([\s\S]*?)\/\/ minimal-shim:end\n/.exec(indexJs);
  assert.ok(page, 'ABI.md has a minimal-shim block');
  assert.ok(code, 'index.js has a minimal-shim block');
  assert.equal(code[1], page[1]);
});

test('index.js imports nothing from Node.js statically and does not use node:wasi', () => {
  assert.doesNotMatch(indexJs, /^import\b/m, 'a static import would load in browsers too');
  assert.doesNotMatch(indexJs, /import\(['"]node:wasi|new WASI\b/);
  // process is only read to tell Node.js from a browser.
  const uses = indexJs.split('\n').filter((l) => /\bprocess\b/.test(l) && !l.trim().startsWith('//'));
  assert.deepEqual(uses, ["const inNode = globalThis.process?.versions?.node !== undefined;"]);
});

test('using the binding prints no warning', () => {
  const index = fileURLToPath(new URL('../index.js', import.meta.url));
  const script = `const { Machine } = await import(${JSON.stringify(index)});
    const m = new Machine({ served: ['montague.com'] });
    m.client(Date.now(), 'romeo@montague.com/balcony', '<presence/>');
    m.server(Date.now(), "<presence from='juliet@capulet.com/c' to='romeo@montague.com' type='probe'/>");`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '');
  assert.equal(r.stdout, '');
});
