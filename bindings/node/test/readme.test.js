// Runs the Node.js example of bindings/README.md exactly as written, from a
// file inside this package so that it imports the package by its name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

test('the README example prints the probe reply', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const blocks = readme.split('```js\n').slice(1);
  assert.equal(blocks.length, 1, 'one js block in bindings/README.md');
  const src = blocks[0].split('\n```')[0] + '\n';
  const file = fileURLToPath(new URL(`../.readme-example-${process.pid}.mjs`, import.meta.url));
  writeFileSync(file, src);
  try {
    // No --no-warnings: the example must run without printing any.
    const r = spawnSync(process.execPath, [file], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '', 'the example prints nothing on stderr');
    const out = r.stdout;
    assert.match(out, /^reply juliet@capulet\.com\/chamber <presence from='romeo@montague\.com\/balcony' to='juliet@capulet\.com\/chamber'><status>On the balcony<\/status><delay xmlns='urn:xmpp:delay' from='romeo@montague\.com\/balcony' stamp='[0-9T:.-]+Z'\/><\/presence>\n$/);
  } finally {
    rmSync(file, { force: true });
  }
});
