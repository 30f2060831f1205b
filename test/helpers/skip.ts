/**
 * Honest skips. A test that needs something this machine may lack (socat, openssl, /dev/uhid, Chromium,
 * a built addon, root) is decided BEFORE it runs: with a reason it is registered through uvu's own
 * `skip` — so the closing line counts it under "skipped", never under "passed" — and the reason is
 * printed once, as `skip: <test name> — <reason>`. Without a reason it is an ordinary test.
 *
 *   const serial = needs(socatMissing());
 *   serial('a scan written into a pty arrives …', async () => { … });
 */
import { test as uvuTest, type Test } from 'uvu';

type Body = Parameters<Test>[1];

export function needs(why: string | undefined | null | false, suite: Test = uvuTest): (name: string, body: Body) => void {
  return (name, body) => {
    if (!why) return suite(name, body);
    console.log(`  skip: ${name} — ${why}`);
    suite.skip(name, body);
  };
}
