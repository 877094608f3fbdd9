// The package's metadata and types agree with its code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as lastseen from '../index.js';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

test('package.json: an ES module with types and no dependencies', () => {
  assert.equal(pkg.type, 'module');
  assert.equal(pkg.exports['.'].default, './index.js');
  assert.equal(pkg.exports['.'].types, './index.d.ts');
  assert.equal(pkg.dependencies, undefined);
  assert.equal(pkg.devDependencies, undefined);
  assert.ok(pkg.files.includes('lastseen.wasm'));
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
