/**
 * Audit from a tool run (key import, card setup, restore): opens the trail of `<stateDir>/audit` with
 * the configured card, appends, closes. The trail has one writer, so this works while the appliance is
 * stopped — which key changes need anyway; while it runs, the call fails with "in use by process N"
 * (the change must then go through an admin endpoint of the running appliance, which audits it).
 */
import path from 'node:path';
import type { ApplianceConfig } from '../config/schema.ts';
import type { CardPrimitives } from '../crypto/card.ts';
import { AuditTrail, type AuditEvent, type AuditRecord } from './audit.ts';

export async function auditOffline(config: ApplianceConfig, card: Pick<CardPrimitives, 'hmacSm3'>, events: AuditEvent[]): Promise<AuditRecord[]> {
  const trail = await AuditTrail.open({
    dir: path.join(config.stateDir, 'audit'),
    card,
    macKey: config.card.keys.mac,
    retainDays: config.audit.retainDays,
    maxBytes: config.audit.maxBytes,
  });
  try {
    const out: AuditRecord[] = [];
    for (const e of events) out.push(await trail.append({ operator: process.env.SUDO_USER ?? process.env.USER, ...e }));
    return out;
  } finally {
    await trail.close();
  }
}
