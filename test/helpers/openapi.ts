import * as assert from 'uvu/assert';
import type { Hono } from 'hono';

/** The OpenAPI document served at `${url}/v1/openapi.json` lists exactly the routes `app` serves. */
export async function assertOpenApiInSync(app: Hono, url: string): Promise<void> {
  const served = new Set(app.routes.filter((r) => r.method !== 'ALL').map((r) => `${r.method.toLowerCase()} ${r.path.replace(/:([A-Za-z_]+)/g, '{$1}')}`));
  const doc = (await (await fetch(`${url}/v1/openapi.json`)).json()) as { openapi: string; paths: Record<string, object> };
  assert.is(doc.openapi, '3.1.0');
  const documented = new Set(Object.entries(doc.paths).flatMap(([p, item]) => Object.keys(item).filter((m) => m !== 'parameters').map((m) => `${m} ${p}`)));
  assert.equal([...served].sort(), [...documented].sort());
}
