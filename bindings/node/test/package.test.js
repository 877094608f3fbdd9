// The package's metadata and types agree with its code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as lastseen from '../index.js';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

test('package.json: an ES module with types and no dependencies', () => {
  assert.equal(pkg.type, 'module');
  assert.equal(pkg.exports['.'].default, './index.js');
  assert.equal(pkg.exports['.'].types, './index.d.ts');
  assert.equal(pkg.dependencies, undefined);
  // TypeScript only type-checks index.d.ts (npm run typecheck); nothing
  // else is needed, even to develop.
  assert.deepEqual(Object.keys(pkg.devDependencies), ['typescript']);
  assert.ok(pkg.files.includes('lastseen.wasm'));
});

test('the licence of package.json is the LICENSE at the repository root', () => {
  const license = readFileSync(new URL('../../../LICENSE', import.meta.url), 'utf8');
  assert.equal(pkg.license, 'MIT');
  assert.match(license, /^MIT License\n/);
});

test('npm pack ships the code, types, module, README and LICENSE', () => {
  const dir = fileURLToPath(new URL('..', import.meta.url));
  const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts=false'], { cwd: dir, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const files = JSON.parse(r.stdout)[0].files.map((f) => f.path).sort();
  assert.deepEqual(files, ['LICENSE', 'README.md', 'durable.d.ts', 'durable.js', 'index.d.ts', 'index.js', 'lastseen.wasm', 'package.json']);
  for (const f of ['LICENSE', 'README.md', 'lastseen.wasm']) {
    assert.ok(!existsSync(new URL(`../${f}`, import.meta.url)), `postpack removed the copy of ${f}`);
  }
});

test('every result code of ABI.md §6 is in index.js and in the ErrorCode type', () => {
  const abiMd = readFileSync(new URL('../../../wasm/ABI.md', import.meta.url), 'utf8');
  const dts = readFileSync(new URL('../index.d.ts', import.meta.url), 'utf8');
  const js = readFileSync(new URL('../index.js', import.meta.url), 'utf8');
  const errorCode = /export type ErrorCode =([^;]*);/.exec(dts)[1];
  const table = abiMd.slice(abiMd.indexOf('| code | name |')).split('\n\n')[0];
  const codes = [...table.matchAll(/^\| (\d+) \| `([A-Z_]+)` \|/gm)].map((m) => [Number(m[1]), m[2]]);
  assert.ok(codes.length >= 20, `found ${codes.length} codes in ABI.md`);
  for (const [n, name] of codes) {
    assert.ok(errorCode.includes(`'${name}'`), `ErrorCode lacks '${name}'`);
    assert.ok(js.includes(`${n}: '${name}'`), `index.js does not name code ${n} ${name}`);
  }
});

test('index.d.ts declares every export of index.js and no other', () => {
  const dts = readFileSync(new URL('../index.d.ts', import.meta.url), 'utf8');
  const declared = new Set([...dts.matchAll(/^export (?:const|class|function) (\w+)/gm)].map((m) => m[1]));
  assert.deepEqual([...declared].sort(), Object.keys(lastseen).sort());
  for (const method of Object.getOwnPropertyNames(lastseen.Machine.prototype)) {
    if (method === 'constructor') continue;
    assert.match(dts, new RegExp(`^  ${method}\\(`, 'm'), `index.d.ts declares Machine#${method}`);
  }
});

test('the package imports itself by name', async () => {
  const self = await import(pkg.name);
  assert.equal(self.Machine, lastseen.Machine);
});

test('durable.d.ts declares every export of durable.js and every method', async () => {
  const durable = await import('../durable.js');
  const dts = readFileSync(new URL('../durable.d.ts', import.meta.url), 'utf8');
  const declared = new Set([...dts.matchAll(/^export (?:const|class|function) (\w+)/gm)].map((m) => m[1]));
  assert.deepEqual([...declared].sort(), Object.keys(durable).sort());
  for (const method of Object.getOwnPropertyNames(durable.DurableMachine.prototype)) {
    if (method === 'constructor') continue;
    assert.match(dts, new RegExp(`^  (?:readonly )?${method}[(:]|'${method}'`, 'm'), `durable.d.ts declares DurableMachine#${method}`);
  }
  const self = await import(`${pkg.name}/durable`);
  assert.equal(self.openDurable, durable.openDurable);
});

test('index.js stays browser-safe: only durable.js touches the file system for stores', () => {
  const js = readFileSync(new URL('../index.js', import.meta.url), 'utf8');
  assert.doesNotMatch(js, /durable\.js|fsyncSync/);
});
