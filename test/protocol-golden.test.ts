/**
 * Golden vectors: the worked example of 材料三 附录A §3.4 (seed 003, lines ~4140–4760), byte for byte.
 *
 * Assembled from the clean copies only. The seed prints each long hex block several times and the OCR
 * damaged some copies: the request ciphertext of §3.4.1.1 step 4/5 has `DDB9072F` (a stray D, which
 * shifts every later block), `EOF4…`/`FOA3` (O for 0) and a space in `…346BFD FECD…`; the response
 * ciphertext of §3.4.1.2 has `BCODFDCF`, `DFDOA30`, `3EOCAFA` and two dropped runs in its enc_data
 * listing. The copies in §3.4.2.1 (request JSON and 待签名字符串) and §3.4.2.2 (response JSON and
 * 待验签内容) agree with each other character for character and every 16-byte block of them decrypts to
 * upper-hex text, so the vectors below are those copies with line breaks removed.
 *
 * Finding: the response example verifies completely — its 2560-hex ciphertext decrypts to the identity
 * JSON and the published digest 45D8…480B is reproduced over the response fields (empty `sign` and
 * `sign_type` excluded, `ret_code`/`ret_msg` included).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openRequest, openResponse, sealRequest, sealResponse } from '../src/protocol/envelope.ts';
import { decryptBiz, digestInput, messageKey, NATIONAL_V31 } from '../src/protocol/dialect.ts';
import { EhcError } from '../src/errors.ts';

const SECRET = 'BEE975CC71E21F3FE87DE9F7121DE31F09B93D1AC804A60BBF877C240EBB0FC6';
const APP_ID = 'vzusug4lhvq2enpxer';
const REQUEST_JSON =
  '{"ehealth_code":"C50EF5E2892CF29BDC2EFF37C4E9B36F1DA8BDC53B48F7AB5273E4D080CEFA08:0:7F4D9C5D163963FFF9BE8DEB29037A75::35020001001",' +
  '"operator_id":"001","operator_name":"test","out_verify_no":"495a8f3e994f41718b60b7f692fa37af","out_verify_time":"20181227223222","treatment_code":"010101"}';

const REQUEST_CIPHERTEXT =
  'E1A78A21826D512E685B599A960D7E417493315542ABB76EF85A73EF2351AEF120528E31E8EE4344FE644FD30349271F' +
  '32CC6926188815B37177527C0F78722DCC85CAD4D959176E6A315173DBB9072FC0AB9359485AA6F2F905ACBD3BAD9330' +
  '0A43B5E9F39C3C0025B91F7CBAC3F80C49B5E2DE39BF43654C67FBF0B2094EE6A423CFF2F6630A2646AE45054EE34E87' +
  'C7CD49A3162B40A0F7C5FD577D60C78135BCA117F4522001F1A49748DA2E335F02EE12011ED86C64297E59D1AA866EF9' +
  'A66CE994299C0C48C83F25A086D767DCAB5A817B9F2C4AB5EAFE0A523F1CBAD1BD5C4C95F26C0219974A7BB8E122DEBC' +
  '8BA6AB8DC0A386A40A4CCEF82EF5E94C71ECCEBF31974CCE1F9B8A4D2E95FA33079E4E31DAD42751AB53152AE6CCBD25' +
  'BE2F481C4EAC3C89B7AF80D6A5EBC42CB1CEC1F9C88F1173FA952CBFC80017374C77EAFD1332185D75C9D7DC95595F95' +
  'B4499D0E9DF320C4DE97CF2469CCB9FE29F5D5DC44608E3F9B092F5E41E4AB465E1AC74FE4DD98906A6635BF7EB291D3' +
  '3D0F8ADAF60A11FE6808A0F83ED143C0E574D3D8AB40B049B729C5C464E453687F0FDA03E3CB64D13F724520B9743C7E' +
  'B63489E3A7A8CDA1A88E9FAB598DBB3EE335824252E10FC17CCAD1716555580595AE6DB41FD1259CE200849786E16697' +
  '0B6A0CBDA207FFB43E38FB82777DB1346BFDFECDE8D92A5484DF84F2B143F553E39CF649EC6E0F4ADA47EC4C5B782605' +
  '1CC211F71C8396C18C2C565EEAB4B2F7B589004F0A3DE76AEC82DE011FB1EF66EFD762DF3BD4F8FAFA7059E2E9E9DCE6';
const REQUEST_DIGEST = '851C041BC8D788CDA5B87CAD96451A90BD2C8F81BA07F2A6954F69FC3D3BB2A6';

const RESPONSE_CIPHERTEXT =
  '1F61C3BC533DCD0E174EBC7A6D18A18BF6F21C29476DF75976D72068D3B720903FE5FEE28471811A42D59347761868C1' +
  '4E93E9FAED5FB54434CB2C47163E01B5981CA465A4E1D9C3BE1861DBA53F02A34E08204333866CD772510BBF1BC0DFDC' +
  'F4376C1278C00C004EE8266650DDB82D59AAA416F4FF71B8A0A7C52E1469341F4677B0079C1ABB0DCE49B6C61AC4D255' +
  '05B10EE25B9D6AF94E69E14938DABE2D408949F60535D805758A21D77AA6FA5420596C0091650F3D16AEAF2B416DD5E1' +
  'CB541DFD0A30451751D965CCC34007BF82A320C840A8EAB67E42E62B912812A703CFFD76888A933B669B8B55FC9F00E0' +
  'AD0E1499AC29BD506C05ED24A4BF3DBA73470E0AB125B6368373B07CF1C24B3AFDF55C0C274D437795BA74D351382E53' +
  '5869844FCDE9A44A738F40C4FBB9B91BAF8168FAE61478BAD53BF1FE1CE03B3E0CAFA52147F51EE8EA9A465AB005A6A3' +
  '3C98E693CB431241610739270BC58186FCAC6AEC6FD14BA8D0339255747CA18599420532A34D3D1E6C8C36D79EC3BC66' +
  '75056A3D32F300B6B3735F2C1614543B7CB1CD2454D28EE53891546DF3B5EDFBFDC1DB9D2F9E4CB19A403E1F71B72D41' +
  '0EB0D84390C73BAC35B51BE2C74F79565169BD8F3D911DC81CDD12EA81DD30A6775C838036059060ACCAF35F7A8125E0' +
  '853DC13DCA82ACFC09507A50A1D3955B21FE03A687CF07B3F9512A21DE597354E564B2619982E2A335D804A02CABBE38' +
  '21FE03A687CF07B3F9512A21DE59735405CAFD378552C9F5133866260989C7708A4C347E99FB218A5E0A0040492094A0' +
  '3560C560AB6033FAFCFFD3BA048FB745B40C252870E9043742D3B33F8FF3C70AA9A8772CE50131D777BF300D02BC20E1' +
  '89883F46A308B7E08FD5C150CA094486FEDE6DC064AC9D5D92B65BA34786D0FECC4C6F75985618C6D792ABD53CF54F2E' +
  '80DF8C1C5B6EEFF975D5FFF04E5CB831213A60ECBEDD7A2BEF26C491CA6C7E436C71C24AFA20D6F31A9E4AD2337E2A39' +
  'B16B50EC54343A6F18261DC06B8C088F94EC15F25308AFE5686FDDE33E51F6268666E7134F896EB5CCC4A60D77789FAA' +
  '819E6CA2FA063E099B1FE0EF32E369A1D2C59F2FD7EA1262DFF01D532C68971B94EC15F25308AFE5686FDDE33E51F626' +
  '8666E7134F896EB5CCC4A60D77789FAAFB85DD60057073B927DBE2BACE6B0B6EB5FF5E3D517A24D35938EADD36E6BC5E' +
  'AE5B325A1C968335AC1C68CAC477B9688B9AE08CE4604C082111B2E5B380E4B6208D1B304BA36D992A333F8D3D78FB0D' +
  '0FF831C4CE3502372CFE5DD975879AFAF986875DC698BE17B11A09E9C938D1008D88F00F0E5E652870CC432F6AD23234' +
  'EE11BD71653AAD237AC7521D59D94E68FD3742537BB24866031CE7A62E4AD327BE171E91185A868AF3D5F443FEB5E346' +
  'EE6482FFC85A60B16F7FEB0C9D69FA29E47EF474157BC6FC51C17E77DF17B06C2FD5BA71C54A52E1C8BB9DF3353291C0' +
  '0224A38DE871C028AD0689C6BF34E2B29D526504C89C0F9E47E81F818B44A765D9EA44AA0FB5FDD6B115C80EEDF4EB5D' +
  '5EE4BE22176E00A70531075E11B083D90053BF0B35B10845E99CACB9EBD390F9694CC8DD37F7FBFB82048DF3AB97B306' +
  '873B7C89045F88D5219BB008FC7B766DB4FB91CBD2AA07CD63EFF61AF3602F83BF6D5E56A3F91ACC574CD80ADE0C8478' +
  '01B561179DB87BB024494E7A747C1E69AB01CC52ED382BBCA39D0A5894D978A8BE06863AA322855247E136C6BDD8DD35' +
  '49DAA0DC4256449A5C13887241386EAC94CE8F0DAA7AE5D5777BF41BFBB74AD7';
const RESPONSE_DIGEST = '45D8681184A414B406D52C4E45B38BA5D44ED2F072F85D4F3EDA8C92028E480B';

/** The response envelope exactly as the seed prints it (§3.4.2.2). */
const seedResponse = () => ({
  app_id: APP_ID,
  biz_content: RESPONSE_CIPHERTEXT,
  digest: RESPONSE_DIGEST,
  digest_type: 'SM3',
  enc_type: 'SM4',
  method: 'ehc.ehealthcode.verify',
  ret_code: '0000',
  ret_msg: '交易成功',
  sign: '',
  sign_type: '',
  timestamp: '20181227223223',
  version: '1.0.0',
});

function expectCode(fn: () => unknown, code: string) {
  try {
    fn();
  } catch (err) {
    assert.instance(err, EhcError);
    assert.is((err as EhcError).code, code, (err as Error).message);
    return;
  }
  assert.unreachable(`expected EhcError ${code}`);
}

test('message key: first 16 chars of upper-hex(secret) as ASCII bytes', () => {
  assert.is(messageKey(SECRET, NATIONAL_V31).toString('latin1'), '4245453937354343');
});

test('seed request: ciphertext and digest reproduced byte for byte', () => {
  assert.is(REQUEST_CIPHERTEXT.length, 1152);
  const env = sealRequest({
    method: 'ehc.ehealthcode.verify',
    appId: APP_ID,
    termId: '3500000104341',
    version: '1.0.0',
    timestamp: '1545921142502',
    biz: REQUEST_JSON,
    secret: SECRET,
  });
  assert.is(env.biz_content, REQUEST_CIPHERTEXT);
  assert.is(env.digest, REQUEST_DIGEST);
  // the object form serialises to the same JSON text (key order kept)
  const again = sealRequest({
    method: 'ehc.ehealthcode.verify', appId: APP_ID, termId: '3500000104341', version: '1.0.0', timestamp: '1545921142502',
    biz: JSON.parse(REQUEST_JSON) as Record<string, unknown>, secret: SECRET,
  });
  assert.is(again.biz_content, REQUEST_CIPHERTEXT);
  assert.is(again.digest, REQUEST_DIGEST);
  // the digest string starts and ends as the seed's 待签名字符串
  const input = digestInput(env as unknown as Record<string, unknown>, SECRET, NATIONAL_V31);
  assert.ok(input.startsWith('app_id=vzusug4lhvq2enpxer&biz_content=E1A78A21826D512E'));
  assert.ok(input.endsWith('&digest_type=SM3&enc_type=SM4&method=ehc.ehealthcode.verify&term_id=3500000104341&timestamp=1545921142502&version=1.0.0&app_secret=' + SECRET));
});

test('seed request opens on the card-system side to the same JSON', () => {
  const env = {
    app_id: APP_ID, biz_content: REQUEST_CIPHERTEXT, digest: REQUEST_DIGEST, digest_type: 'SM3', enc_type: 'SM4',
    method: 'ehc.ehealthcode.verify', term_id: '3500000104341', timestamp: '1545921142502', version: '1.0.0',
  };
  const opened = openRequest(env, (id) => (id === APP_ID ? { secret: SECRET } : undefined));
  assert.is(opened.bizJson, REQUEST_JSON);
  assert.is(opened.biz.out_verify_no, '495a8f3e994f41718b60b7f692fa37af');
  expectCode(() => openRequest({ ...env, digest: REQUEST_DIGEST.replace('851C', '851D') }, () => ({ secret: SECRET })), '9003');
  expectCode(() => openRequest(env, () => undefined), '1008');
});

test('seed response: digest verifies and the body decrypts to the identity JSON', () => {
  const opened = openResponse(seedResponse(), { secret: SECRET });
  assert.is(opened.retCode, '0000');
  assert.is(opened.biz.user_name, '陈俊海');
  assert.is(opened.biz.id_no, '350322199008207715');
  assert.is(opened.biz.id_type, '01');
  assert.is(opened.biz.mobile_phone, '13646032065');
  assert.is(opened.biz.birthday, '19900820');
  assert.is(opened.biz.ehealth_card_id, 'C50EF5E2892CF29BDC2EFF37C4E9B36F1DA8BDC53B48F7AB5273E4D080CEFA08');
  assert.is(opened.biz.mindex_id, '63AA9438B4CF613D40D66188370B27B3B141AFA6B9238B2D4BE681DA560D2E31');
  // nested JSON stays a string
  assert.type(opened.biz.extra, 'string');
  assert.equal(JSON.parse(opened.biz.extra as string).fzxmc0, '省医保中心');
  // the digest string is the seed's 待验签内容 (sign/sign_type empty → left out)
  const input = digestInput(seedResponse(), SECRET, NATIONAL_V31);
  assert.ok(input.endsWith('BFBB74AD7&digest_type=SM3&enc_type=SM4&method=ehc.ehealthcode.verify&ret_code=0000&ret_msg=交易成功&timestamp=20181227223223&version=1.0.0&app_secret=' + SECRET));
});

test('seed response re-sealed from its plaintext gives the published ciphertext and digest', () => {
  const json = decryptBiz(RESPONSE_CIPHERTEXT, SECRET, NATIONAL_V31);
  const env = sealResponse({
    retCode: '0000', retMsg: '交易成功', appId: APP_ID, method: 'ehc.ehealthcode.verify', version: '1.0.0',
    timestamp: '20181227223223', biz: json, secret: SECRET,
  });
  assert.is(env.biz_content, RESPONSE_CIPHERTEXT);
  assert.is(env.digest, RESPONSE_DIGEST);
});

test('tampered response → 9003, never trusted', () => {
  const swapBlocks = (hex: string) => hex.slice(32, 64) + hex.slice(0, 32) + hex.slice(64);
  const cases: Record<string, unknown>[] = [
    { ...seedResponse(), ret_msg: '交易成功!' },
    { ...seedResponse(), timestamp: '20181227223224' },
    { ...seedResponse(), biz_content: swapBlocks(RESPONSE_CIPHERTEXT) },
    { ...seedResponse(), digest: RESPONSE_DIGEST.slice(0, -1) + 'C' },
    { ...seedResponse(), digest: '' },
    { ...seedResponse(), ret_code: '3002' },
    { ...seedResponse(), sign: 'x' },
  ];
  for (const c of cases) expectCode(() => openResponse(c, { secret: SECRET }), '9003');
  expectCode(() => openResponse(seedResponse(), { secret: SECRET.toLowerCase() }), '9003');
});

test.run();
