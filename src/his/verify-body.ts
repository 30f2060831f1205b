/** The body of POST /v1/verify, validated with JSON schema (ajv). Unknown keys are refused. */
import AjvModule from 'ajv';
import { EhcError } from '../errors.ts';
import { MAX_CODE_LENGTH } from '../code/parse.ts';

const Ajv = AjvModule as unknown as typeof AjvModule.default;

export interface VerifyBody {
  ehealth_code: string;
  treatment_code?: string;
  operator_id?: string;
  operator_name?: string;
  defer?: boolean;
}

export const verifyBodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['ehealth_code'],
  properties: {
    ehealth_code: { type: 'string', minLength: 1, maxLength: MAX_CODE_LENGTH, description: 'the QR payload as scanned' },
    treatment_code: { type: 'string', pattern: '^[0-9]{6}$', description: '诊疗环节编码 (附录E §7.5), e.g. 010101' },
    operator_id: { type: 'string', minLength: 1, maxLength: 32 },
    operator_name: { type: 'string', minLength: 1, maxLength: 64 },
    defer: { type: 'boolean', description: 'queue for the home card system when it is unreachable' },
  },
} as const;

const validate = new Ajv({ allErrors: false, strict: true }).compile<VerifyBody>(verifyBodySchema);

export function parseVerifyBody(body: unknown): VerifyBody {
  if (validate(body)) return body;
  const e = validate.errors?.[0];
  const where = e?.instancePath ? e.instancePath.slice(1) : (e?.params as { additionalProperty?: string })?.additionalProperty ?? 'body';
  const why = e?.keyword === 'additionalProperties' ? `unknown field "${(e.params as { additionalProperty: string }).additionalProperty}"` : `${where} ${e?.message ?? 'invalid'}`;
  throw new EhcError('9001', `bad parameters: ${why}`);
}
