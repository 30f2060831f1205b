// ehc-edge from a C# HIS (.NET 6+; SM3 from BouncyCastle: NuGet BouncyCastle.Cryptography).
// Shown only: no .NET SDK is installable from this project's package sources, so CI does not compile it;
// it mirrors docs/integration/java/EhcEdgeClient.java, which CI compiles and runs.
using System;
using System.Collections.Concurrent;
using System.Net.Http;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Threading.Tasks;
using Org.BouncyCastle.Crypto.Digests;
using Org.BouncyCastle.Crypto.Macs;
using Org.BouncyCastle.Crypto.Parameters;

public static class EhcEdgeClient
{
    static readonly HttpClient Http = new HttpClient { Timeout = TimeSpan.FromSeconds(3) };
    static readonly ConcurrentDictionary<string, bool> Seen = new();

    /// POST /v1/verify; 200 = identity, 422 = code refused (ret_code 2001…), 503 = card/home system down.
    public static async Task<(int Status, JsonDocument Body)> Verify(string baseUrl, string apiKey, string qr)
    {
        using var req = new HttpRequestMessage(HttpMethod.Post, baseUrl + "/v1/verify");
        req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        req.Content = new StringContent(JsonSerializer.Serialize(new { ehealth_code = qr }), Encoding.UTF8, "application/json");
        using var res = await Http.SendAsync(req);
        return ((int)res.StatusCode, JsonDocument.Parse(await res.Content.ReadAsStringAsync()));
    }

    static string HmacSm3Hex(string secret, string text)
    {
        var mac = new HMac(new SM3Digest());
        mac.Init(new KeyParameter(Encoding.UTF8.GetBytes(secret)));
        var input = Encoding.UTF8.GetBytes(text);
        mac.BlockUpdate(input, 0, input.Length);
        var output = new byte[mac.GetMacSize()];
        mac.DoFinal(output, 0);
        return Convert.ToHexString(output).ToLowerInvariant();
    }

    /// "ok", "duplicate" (answer 2xx, do not process again), or why it is refused (answer 401).
    public static string CheckWebhook(string secret, string delivery, string timestamp, string signature, string body)
    {
        if (delivery is null || timestamp is null || signature is null || !long.TryParse(timestamp, out var ts) || !signature.StartsWith("hmac-sm3=")) return "missing-headers";
        var expected = Encoding.ASCII.GetBytes(HmacSm3Hex(secret, $"{timestamp}.{delivery}.{body}"));
        var given = Encoding.ASCII.GetBytes(signature.Substring("hmac-sm3=".Length));
        if (!CryptographicOperations.FixedTimeEquals(expected, given)) return "bad-signature";
        if (Math.Abs(DateTimeOffset.UtcNow.ToUnixTimeSeconds() - ts) > 300) return "stale-timestamp";
        return Seen.TryAdd(delivery, true) ? "ok" : "duplicate";
    }
}
