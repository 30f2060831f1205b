// ehc-edge from a Java HIS (JDK 11+; SM3 from BouncyCastle: Debian libbcprov-java, Maven org.bouncycastle:bcprov-jdk18on).
//   javac -cp /usr/share/java/bcprov.jar EhcEdgeClient.java
//   java  -cp /usr/share/java/bcprov.jar:. EhcEdgeClient verify  http://127.0.0.1:8080 <api-key> <qr-text>
//   java  -cp /usr/share/java/bcprov.jar:. EhcEdgeClient check   <secret> <delivery> <timestamp> <signature> <body-file>
// verify: POST /v1/verify and print the answer. check: the webhook receiver's signature check.
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.bouncycastle.crypto.digests.SM3Digest;
import org.bouncycastle.crypto.macs.HMac;
import org.bouncycastle.crypto.params.KeyParameter;

public final class EhcEdgeClient {
  private static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
  /** delivery ids already processed: keep them at least as long as the timestamp tolerance */
  private static final Set<String> SEEN = ConcurrentHashMap.newKeySet();

  /** POST /v1/verify; 200 = identity, 422 = code refused (ret_code 2001…), 503 = card/home system down. */
  static String verify(String base, String apiKey, String qr) throws Exception {
    String json = "{\"ehealth_code\":\"" + qr.replace("\\", "\\\\").replace("\"", "\\\"") + "\"}";
    HttpRequest req = HttpRequest.newBuilder(URI.create(base + "/v1/verify"))
        .timeout(Duration.ofSeconds(3))
        .header("Authorization", "Bearer " + apiKey)
        .header("Content-Type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofString(json, StandardCharsets.UTF_8))
        .build();
    HttpResponse<String> res = HTTP.send(req, HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
    return res.statusCode() + " " + res.body();
  }

  static String hmacSm3Hex(String secret, String text) {
    HMac mac = new HMac(new SM3Digest());
    mac.init(new KeyParameter(secret.getBytes(StandardCharsets.UTF_8)));
    byte[] in = text.getBytes(StandardCharsets.UTF_8);
    mac.update(in, 0, in.length);
    byte[] out = new byte[mac.getMacSize()];
    mac.doFinal(out, 0);
    StringBuilder hex = new StringBuilder();
    for (byte b : out) hex.append(String.format("%02x", b));
    return hex.toString();
  }

  /** "ok", "duplicate" (answer 2xx, do not process again), or why it is refused (answer 401). */
  static String checkWebhook(String secret, String delivery, String timestamp, String signature, String body, long nowSeconds) {
    if (delivery == null || timestamp == null || signature == null || !timestamp.matches("\\d{1,12}") || !signature.startsWith("hmac-sm3=")) return "missing-headers";
    String expected = hmacSm3Hex(secret, timestamp + "." + delivery + "." + body);
    byte[] a = expected.getBytes(StandardCharsets.US_ASCII);
    byte[] b = signature.substring("hmac-sm3=".length()).getBytes(StandardCharsets.US_ASCII);
    if (!MessageDigest.isEqual(a, b)) return "bad-signature";
    if (Math.abs(nowSeconds - Long.parseLong(timestamp)) > 300) return "stale-timestamp";
    return SEEN.add(delivery) ? "ok" : "duplicate";
  }

  public static void main(String[] args) throws Exception {
    if (args.length == 4 && args[0].equals("verify")) {
      System.out.println(verify(args[1], args[2], args[3]));
    } else if (args.length == 6 && args[0].equals("check")) {
      String body = Files.readString(Path.of(args[5]), StandardCharsets.UTF_8);
      System.out.println(checkWebhook(args[1], args[2], args[3], args[4], body, System.currentTimeMillis() / 1000));
    } else {
      System.err.println("usage: verify <base> <api-key> <qr> | check <secret> <delivery> <timestamp> <signature> <body-file>");
      System.exit(2);
    }
  }
}
