// sdf_bridge: an N-API addon that dlopen()s a GM/T 0018 SDF library at run time and runs every card
// call as async work on the libuv pool, so the event loop never waits on the card.
//
// Only what needs C lives here: loading, the function table, struct layout, handles and their
// lifetimes. Defaults, pooling, quirk choice, padding and error policy are TypeScript
// (firmware-bridge/lib). Errors reach JS as Error objects with `code` (ESDR, ELOAD, ESYMBOL, ECLOSED,
// EBUSY, EARG), `fn` (the SDF function) and, for ESDR, `sdr` (the return code).
//
// Lifetimes: a Library owns the dlopen handle and the device handle in a shared LibState; every
// Session and every in-flight call holds a shared_ptr to it, so nothing is unloaded under a running
// call. Session state changes happen on the JS thread only: an op marks its session busy when queued
// and idle when settled; close() refuses a busy session (the TS pool waits for in-flight calls first).
//
// Thread safety: GM/T 0018 says nothing about it, so the addon assumes only what a session-per-thread
// reading allows. (1) One call at a time per session (the TS pool). (2) Device and session lifecycle —
// SDF_OpenDevice, SDF_CloseDevice, SDF_OpenSession, SDF_CloseSession (with the SDF_DestroyKey calls of
// the closing session) — touch device-wide state (a vendor's session list) and run one at a time under
// LibState::lifecycle, on the pool thread that does them. Crypto calls on different sessions run in
// parallel: that is what sessions are for, and a library that cannot do even that needs sessions: 1.
#include <dlfcn.h>
#include <napi.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <memory>
#include <string>
#include <vector>

#include "sdf.h"

namespace {

constexpr unsigned kMaxEcc = 64;  // the standard's ECCref_MAX_LEN: buffers are never smaller

struct Api {
  SDF_OpenDevice_fn OpenDevice = nullptr;
  SDF_CloseDevice_fn CloseDevice = nullptr;
  SDF_OpenSession_fn OpenSession = nullptr;
  SDF_CloseSession_fn CloseSession = nullptr;
  SDF_GetDeviceInfo_fn GetDeviceInfo = nullptr;
  SDF_GenerateRandom_fn GenerateRandom = nullptr;
  SDF_GetPrivateKeyAccessRight_fn GetPrivateKeyAccessRight = nullptr;
  SDF_ReleasePrivateKeyAccessRight_fn ReleasePrivateKeyAccessRight = nullptr;
  SDF_ExportSignPublicKey_ECC_fn ExportSignPublicKey_ECC = nullptr;
  SDF_ImportKeyWithKEK_fn ImportKeyWithKEK = nullptr;
  SDF_GenerateKeyWithKEK_fn GenerateKeyWithKEK = nullptr;
  SDF_ImportKeyWithISK_ECC_fn ImportKeyWithISK_ECC = nullptr;
  SDF_ExportEncPublicKey_ECC_fn ExportEncPublicKey_ECC = nullptr;
  SDF_GetSymmKeyHandle_fn GetSymmKeyHandle = nullptr;
  SDF_DestroyKey_fn DestroyKey = nullptr;
  SDF_InternalSign_ECC_fn InternalSign_ECC = nullptr;
  SDF_InternalVerify_ECC_fn InternalVerify_ECC = nullptr;
  SDF_Encrypt_fn Encrypt = nullptr;
  SDF_Decrypt_fn Decrypt = nullptr;
  SDF_HashInit_fn HashInit = nullptr;
  SDF_HashUpdate_fn HashUpdate = nullptr;
  SDF_HashFinal_fn HashFinal = nullptr;
};

struct LibState {
  void *dl = nullptr;
  Api api;
  std::string path;
  std::string keyHandleSymbol;
  unsigned eccLen = 64;
  void *device = nullptr;
  bool deviceBusy = false;  // open/close in flight (JS thread only)
  std::mutex lifecycle;     // serialises device/session open and close on the pool threads (see the top)
  bool serialise = true;    // false only to show what a lock-free library does without it (bench)
  int sessions = 0;         // open sessions (JS thread only)
  std::vector<std::string> present;
  ~LibState() {
    // A library whose device was never closed is left mapped: vendor libraries may keep threads.
    if (dl && !device) dlclose(dl);
  }
};

struct SessState {
  std::shared_ptr<LibState> lib;
  void *h = nullptr;
  bool closed = false;  // JS thread only
  int busy = 0;         // JS thread only
  std::map<uint32_t, void *> keys;  // touched only by the one op running on this session
};

Napi::Error MakeError(Napi::Env env, const std::string &code, const std::string &fn, const std::string &msg,
                      int sdr) {
  std::string text = msg;
  if (text.empty()) {
    char buf[64];
    snprintf(buf, sizeof buf, "returned 0x%08X", static_cast<unsigned>(sdr));
    text = fn + " " + buf;
  }
  Napi::Error err = Napi::Error::New(env, text);
  err.Set("code", Napi::String::New(env, code));
  if (!fn.empty()) err.Set("fn", Napi::String::New(env, fn));
  if (code == "ESDR") err.Set("sdr", Napi::Number::New(env, static_cast<double>(static_cast<unsigned>(sdr))));
  return err;
}

// One card call (or a short sequence on one session) as async work, settled as a Promise.
class Op : public Napi::AsyncWorker {
 public:
  using Run = std::function<int(Op &)>;
  using Done = std::function<Napi::Value(Napi::Env, Op &)>;

  Op(Napi::Env env, std::string fn, Run run, Done done, std::function<void(Op &)> settle = nullptr)
      : Napi::AsyncWorker(env, "sdf"),
        deferred(Napi::Promise::Deferred::New(env)),
        fn(std::move(fn)),
        run_(std::move(run)),
        done_(std::move(done)),
        settle_(std::move(settle)) {}

  Napi::Promise Queue_() {
    Napi::Promise p = deferred.Promise();
    Queue();
    return p;
  }

  void Execute() override { rc = run_(*this); }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    if (settle_) settle_(*this);
    if (!errCode.empty()) {
      deferred.Reject(MakeError(env, errCode, fn, errMsg, 0).Value());
    } else if (rc != SDR_OK) {
      deferred.Reject(MakeError(env, "ESDR", fn, "", rc).Value());
    } else {
      deferred.Resolve(done_ ? done_(env, *this) : env.Undefined());
    }
  }

  void OnError(const Napi::Error &e) override {
    if (settle_) settle_(*this);
    deferred.Reject(e.Value());
  }

  Napi::Promise::Deferred deferred;
  std::string fn;
  int rc = 0;
  std::string errCode, errMsg;
  std::vector<uint8_t> in1, in2, in3, out;
  unsigned outLen = 0;
  void *handle = nullptr;
  bool flag = false;
  DEVICEINFO info{};

 private:
  Run run_;
  Done done_;
  std::function<void(Op &)> settle_;
};

Napi::Value Rejected(Napi::Env env, const std::string &code, const std::string &fn, const std::string &msg) {
  auto d = Napi::Promise::Deferred::New(env);
  d.Reject(MakeError(env, code, fn, msg, 0).Value());
  return d.Promise();
}

std::vector<uint8_t> Bytes(const Napi::Value &v) {
  if (v.IsBuffer()) {
    auto b = v.As<Napi::Buffer<uint8_t>>();
    return std::vector<uint8_t>(b.Data(), b.Data() + b.Length());
  }
  if (v.IsTypedArray()) {
    auto t = v.As<Napi::Uint8Array>();
    return std::vector<uint8_t>(t.Data(), t.Data() + t.ByteLength());
  }
  throw Napi::TypeError::New(v.Env(), "expected a Buffer or Uint8Array");
}

uint32_t U32(const Napi::CallbackInfo &info, size_t i, const char *what) {
  if (info.Length() <= i || !info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(what) + ": expected a number");
  return info[i].As<Napi::Number>().Uint32Value();
}

Napi::Buffer<uint8_t> Out(Napi::Env env, const uint8_t *p, size_t n) { return Napi::Buffer<uint8_t>::Copy(env, p, n); }

std::string FixedString(const unsigned char *p, size_t n) {
  size_t len = 0;
  while (len < n && p[len] != 0) len++;
  while (len > 0 && p[len - 1] == ' ') len--;
  return std::string(reinterpret_cast<const char *>(p), len);
}

// ECC structs laid out at run time for the vendor's field length L: ECCrefPublicKey = bits(4) ‖ x[L] ‖ y[L],
// ECCSignature = r[L] ‖ s[L]; a 256-bit value sits right-aligned in its field.
void PutField(uint8_t *field, unsigned L, const uint8_t *v32) {
  memset(field, 0, L);
  memcpy(field + L - 32, v32, 32);
}

class Session;

struct AddonData {
  Napi::FunctionReference sessionCtor;
};

class Session : public Napi::ObjectWrap<Session> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Session",
                       {
                           InstanceMethod<&Session::Close>("close"),
                           InstanceMethod<&Session::DeviceInfo>("deviceInfo"),
                           InstanceMethod<&Session::Random>("random"),
                           InstanceMethod<&Session::KeyByIndex>("keyByIndex"),
                           InstanceMethod<&Session::KeyWithKek>("keyWithKek"),
                           InstanceMethod<&Session::GenerateKeyWithKek>("generateKeyWithKek"),
                           InstanceMethod<&Session::KeyWithIsk>("keyWithIsk"),
                           InstanceMethod<&Session::ExportEncPublicKey>("exportEncPublicKey"),
                           InstanceMethod<&Session::HasKey>("hasKey"),
                           InstanceMethod<&Session::Encrypt>("encrypt"),
                           InstanceMethod<&Session::Decrypt>("decrypt"),
                           InstanceMethod<&Session::Hash>("hash"),
                           InstanceMethod<&Session::AccessRight>("accessRight"),
                           InstanceMethod<&Session::ExportSignPublicKey>("exportSignPublicKey"),
                           InstanceMethod<&Session::InternalSign>("internalSign"),
                           InstanceMethod<&Session::InternalVerify>("internalVerify"),
                           InstanceAccessor<&Session::IsClosed>("closed"),
                       });
  }

  explicit Session(const Napi::CallbackInfo &info) : Napi::ObjectWrap<Session>(info) {
    if (info.Length() < 1 || !info[0].IsExternal()) throw Napi::TypeError::New(info.Env(), "Session is made by Library.openSession()");
    auto *p = info[0].As<Napi::External<std::shared_ptr<SessState>>>().Data();
    s_ = *p;
    delete p;
  }

  ~Session() override {
    // Collected without close(): close it on the JS thread (no call can be in flight: each holds a ref).
    if (s_ && !s_->closed && s_->h) {
      auto &api = s_->lib->api;
      std::unique_lock<std::mutex> lock(s_->lib->lifecycle, std::defer_lock);
      if (s_->lib->serialise) lock.lock();
      for (auto &kv : s_->keys) api.DestroyKey(s_->h, kv.second);
      s_->keys.clear();
      api.CloseSession(s_->h);
      s_->closed = true;
      s_->lib->sessions--;
    }
  }

 private:
  std::shared_ptr<SessState> s_;

  // Common gate: refuse on a closed session, mark busy, keep `this` alive until settled.
  Napi::Value Start(const Napi::CallbackInfo &info, const std::string &fn, Op::Run run, Op::Done done,
                    std::function<void(Op &)> prep = nullptr) {
    Napi::Env env = info.Env();
    if (s_->closed) return Rejected(env, "ECLOSED", fn, fn + ": session is closed");
    auto s = s_;
    auto self = std::make_shared<Napi::ObjectReference>(Napi::Persistent(Value()));
    s->busy++;
    auto *op = new Op(env, fn, std::move(run), std::move(done), [s, self](Op &) {
      s->busy--;
      self->Reset();
    });
    if (prep) prep(*op);
    return op->Queue_();
  }

  Napi::Value IsClosed(const Napi::CallbackInfo &info) { return Napi::Boolean::New(info.Env(), s_->closed); }

  Napi::Value Close(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (s_->closed) {
      auto d = Napi::Promise::Deferred::New(env);
      d.Resolve(env.Undefined());
      return d.Promise();
    }
    if (s_->busy > 0) return Rejected(env, "EBUSY", "SDF_CloseSession", "session has calls in flight");
    auto s = s_;
    s->closed = true;
    s->busy++;
    auto *op = new Op(
        env, "SDF_CloseSession",
        [s](Op &op) {
          auto &api = s->lib->api;
          std::unique_lock<std::mutex> lock(s->lib->lifecycle, std::defer_lock);
          if (s->lib->serialise) lock.lock();
          for (auto &kv : s->keys) api.DestroyKey(s->h, kv.second);
          s->keys.clear();
          op.fn = "SDF_CloseSession";
          return api.CloseSession(s->h);
        },
        nullptr,
        [s](Op &) {
          s->busy--;
          s->h = nullptr;
          s->lib->sessions--;
        });
    return op->Queue_();
  }

  Napi::Value DeviceInfo(const Napi::CallbackInfo &info) {
    auto s = s_;
    return Start(
        info, "SDF_GetDeviceInfo", [s](Op &op) { return s->lib->api.GetDeviceInfo(s->h, &op.info); },
        [](Napi::Env env, Op &op) -> Napi::Value {
          auto o = Napi::Object::New(env);
          o.Set("issuer", FixedString(op.info.IssuerName, sizeof op.info.IssuerName));
          o.Set("name", FixedString(op.info.DeviceName, sizeof op.info.DeviceName));
          o.Set("serial", FixedString(op.info.DeviceSerial, sizeof op.info.DeviceSerial));
          o.Set("deviceVersion", op.info.DeviceVersion);
          o.Set("standardVersion", op.info.StandardVersion);
          auto asym = Napi::Array::New(env, 2);
          asym.Set(0u, op.info.AsymAlgAbility[0]);
          asym.Set(1u, op.info.AsymAlgAbility[1]);
          o.Set("asymAlgAbility", asym);
          o.Set("symAlgAbility", op.info.SymAlgAbility);
          o.Set("hashAlgAbility", op.info.HashAlgAbility);
          o.Set("bufferSize", op.info.BufferSize);
          return o;
        });
  }

  Napi::Value Random(const Napi::CallbackInfo &info) {
    uint32_t n = U32(info, 0, "length");
    auto s = s_;
    return Start(
        info, "SDF_GenerateRandom",
        [s, n](Op &op) {
          op.out.resize(n);
          return s->lib->api.GenerateRandom(s->h, n, op.out.data());
        },
        [](Napi::Env env, Op &op) -> Napi::Value { return Out(env, op.out.data(), op.out.size()); });
  }

  static void SetKey(SessState &s, uint32_t slot, void *handle) {
    auto it = s.keys.find(slot);
    if (it != s.keys.end()) s.lib->api.DestroyKey(s.h, it->second);
    s.keys[slot] = handle;
  }

  Napi::Value KeyByIndex(const Napi::CallbackInfo &info) {
    uint32_t slot = U32(info, 0, "slot"), index = U32(info, 1, "index");
    auto s = s_;
    const std::string fn = s->lib->keyHandleSymbol.empty() ? "SDF_GetSymmKeyHandle" : s->lib->keyHandleSymbol;
    if (!s->lib->api.GetSymmKeyHandle)
      return Rejected(info.Env(), "ESYMBOL", fn, "the library has no " + fn + ": keys by internal index are not offered (give keys as envelopes or KEK-wrapped blobs)");
    return Start(info, fn, [s, slot, index](Op &op) {
      void *h = nullptr;
      int rc = s->lib->api.GetSymmKeyHandle(s->h, index, &h);
      if (rc == SDR_OK) SetKey(*s, slot, h);
      return rc;
    }, nullptr);
  }

  Napi::Value KeyWithKek(const Napi::CallbackInfo &info) {
    uint32_t slot = U32(info, 0, "slot"), alg = U32(info, 1, "algId"), kek = U32(info, 2, "kekIndex");
    auto s = s_;
    if (!s->lib->api.ImportKeyWithKEK) return Rejected(info.Env(), "ESYMBOL", "SDF_ImportKeyWithKEK", "the library has no SDF_ImportKeyWithKEK");
    auto wrapped = Bytes(info[3]);
    return Start(
        info, "SDF_ImportKeyWithKEK",
        [s, slot, alg, kek](Op &op) {
          void *h = nullptr;
          int rc = s->lib->api.ImportKeyWithKEK(s->h, alg, kek, op.in1.data(), static_cast<unsigned>(op.in1.size()), &h);
          if (rc == SDR_OK) SetKey(*s, slot, h);
          return rc;
        },
        nullptr, [&wrapped](Op &op) { op.in1 = std::move(wrapped); });
  }

  // generateKeyWithKek(slot, keyBits, algId, kekIndex, maxBlob): a new key made in the card, left in
  // `slot` of this session; resolves with its blob wrapped under the KEK (the config keeps it).
  Napi::Value GenerateKeyWithKek(const Napi::CallbackInfo &info) {
    uint32_t slot = U32(info, 0, "slot"), bits = U32(info, 1, "keyBits"), alg = U32(info, 2, "algId"), kek = U32(info, 3, "kekIndex"),
             maxBlob = U32(info, 4, "maxBlob");
    auto s = s_;
    if (!s->lib->api.GenerateKeyWithKEK)
      return Rejected(info.Env(), "ESYMBOL", "SDF_GenerateKeyWithKEK", "the library has no SDF_GenerateKeyWithKEK");
    if (maxBlob == 0 || maxBlob > 4096) throw Napi::RangeError::New(info.Env(), "maxBlob must be 1..4096");
    return Start(
        info, "SDF_GenerateKeyWithKEK",
        [s, slot, bits, alg, kek, maxBlob](Op &op) {
          void *h = nullptr;
          op.out.assign(maxBlob + 64, 0);  // room beyond what the quirk says: a longer blob is an error, not an overflow
          unsigned n = maxBlob;
          int rc = s->lib->api.GenerateKeyWithKEK(s->h, bits, alg, kek, op.out.data(), &n, &h);
          if (rc != SDR_OK) return rc;
          SetKey(*s, slot, h);
          if (n > maxBlob) {
            op.errCode = "EARG";
            op.errMsg = "SDF_GenerateKeyWithKEK returned a " + std::to_string(n) + "-byte blob, more than the " + std::to_string(maxBlob) + " bytes allowed";
            return 0;
          }
          op.outLen = n;
          return rc;
        },
        [](Napi::Env env, Op &op) -> Napi::Value { return Out(env, op.out.data(), op.outLen); });
  }

  // keyWithIsk(slot, iskIndex, x32, y32, hash32, c): the digital envelope (SM2 ciphertext C1 ‖ C3 ‖ C2 of a
  // session key, encrypted to the card's encryption key at iskIndex), laid out as ECCCipher for eccLen.
  Napi::Value KeyWithIsk(const Napi::CallbackInfo &info) {
    uint32_t slot = U32(info, 0, "slot"), isk = U32(info, 1, "iskIndex");
    auto s = s_;
    if (!s->lib->api.ImportKeyWithISK_ECC)
      return Rejected(info.Env(), "ESYMBOL", "SDF_ImportKeyWithISK_ECC", "the library has no SDF_ImportKeyWithISK_ECC");
    auto x = Bytes(info[2]), y = Bytes(info[3]), m = Bytes(info[4]), c = Bytes(info[5]);
    if (x.size() != 32 || y.size() != 32 || m.size() != 32) throw Napi::RangeError::New(info.Env(), "envelope C1 (x, y) and C3 must be 32 bytes each");
    if (c.empty() || c.size() > 1024) throw Napi::RangeError::New(info.Env(), "envelope C2 must be 1..1024 bytes");
    return Start(
        info, "SDF_ImportKeyWithISK_ECC",
        [s, slot, isk](Op &op) {
          unsigned L = s->lib->eccLen;
          // x[L] ‖ y[L] ‖ M[32] ‖ L(4) ‖ C[n], with room for vendors that declare C[136]
          std::vector<uint8_t> cipher(2 * kMaxEcc + 32 + 4 + std::max<size_t>(op.in2.size(), 136) + 16, 0);
          PutField(cipher.data(), L, op.in1.data());
          PutField(cipher.data() + L, L, op.in1.data() + 32);
          memcpy(cipher.data() + 2 * L, op.in3.data(), 32);
          uint32_t n = static_cast<uint32_t>(op.in2.size());
          memcpy(cipher.data() + 2 * L + 32, &n, 4);
          memcpy(cipher.data() + 2 * L + 36, op.in2.data(), n);
          void *h = nullptr;
          int rc = s->lib->api.ImportKeyWithISK_ECC(s->h, isk, cipher.data(), &h);
          if (rc == SDR_OK) SetKey(*s, slot, h);
          return rc;
        },
        nullptr,
        [&x, &y, &m, &c](Op &op) {
          op.in1 = std::move(x);
          op.in1.insert(op.in1.end(), y.begin(), y.end());
          op.in3 = std::move(m);
          op.in2 = std::move(c);
        });
  }

  Napi::Value HasKey(const Napi::CallbackInfo &info) {
    uint32_t slot = U32(info, 0, "slot");
    return Napi::Boolean::New(info.Env(), s_->keys.count(slot) > 0);
  }

  Napi::Value Cipher(const Napi::CallbackInfo &info, bool enc) {
    uint32_t slot = U32(info, 0, "slot"), alg = U32(info, 1, "algId");
    bool hasIv = info.Length() > 2 && !info[2].IsNull() && !info[2].IsUndefined();
    std::vector<uint8_t> iv = hasIv ? Bytes(info[2]) : std::vector<uint8_t>();
    std::vector<uint8_t> data = Bytes(info[3]);
    if (hasIv && iv.size() != 16) throw Napi::RangeError::New(info.Env(), "iv must be 16 bytes");
    auto s = s_;
    const char *fn = enc ? "SDF_Encrypt" : "SDF_Decrypt";
    return Start(
        info, fn,
        [s, slot, alg, hasIv, enc](Op &op) {
          auto it = s->keys.find(slot);
          if (it == s->keys.end()) {
            op.errCode = "EARG";
            op.errMsg = "no key loaded in slot " + std::to_string(slot) + " of this session";
            return 0;
          }
          op.out.resize(op.in1.size() + 32);
          unsigned n = static_cast<unsigned>(op.out.size());
          auto &api = s->lib->api;
          int rc = enc ? api.Encrypt(s->h, it->second, alg, hasIv ? op.in2.data() : nullptr, op.in1.data(),
                                     static_cast<unsigned>(op.in1.size()), op.out.data(), &n)
                       : api.Decrypt(s->h, it->second, alg, hasIv ? op.in2.data() : nullptr, op.in1.data(),
                                     static_cast<unsigned>(op.in1.size()), op.out.data(), &n);
          if (rc == SDR_OK && n > op.out.size()) {
            op.errCode = "EARG";
            op.errMsg = "library reported an output longer than its buffer";
            return 0;
          }
          op.outLen = n;
          return rc;
        },
        [](Napi::Env env, Op &op) -> Napi::Value { return Out(env, op.out.data(), op.outLen); },
        [&data, &iv](Op &op) {
          op.in1 = std::move(data);
          op.in2 = std::move(iv);
        });
  }
  Napi::Value Encrypt(const Napi::CallbackInfo &info) { return Cipher(info, true); }
  Napi::Value Decrypt(const Napi::CallbackInfo &info) { return Cipher(info, false); }

  // hash(algId, data, publicKeyXY?, id?): HashInit (with ZA when a public key and ID are given),
  // HashUpdate, HashFinal on this session.
  Napi::Value Hash(const Napi::CallbackInfo &info) {
    uint32_t alg = U32(info, 0, "algId");
    std::vector<uint8_t> data = Bytes(info[1]);
    bool za = info.Length() > 3 && !info[2].IsNull() && !info[2].IsUndefined() && !info[3].IsNull() && !info[3].IsUndefined();
    std::vector<uint8_t> pub = za ? Bytes(info[2]) : std::vector<uint8_t>();
    std::vector<uint8_t> id = za ? Bytes(info[3]) : std::vector<uint8_t>();
    if (za && pub.size() != 64) throw Napi::RangeError::New(info.Env(), "public key must be X‖Y, 64 bytes");
    auto s = s_;
    return Start(
        info, "SDF_HashInit",
        [s, alg, za](Op &op) {
          auto &api = s->lib->api;
          unsigned L = s->lib->eccLen;
          std::vector<uint8_t> pk;
          if (za) {
            pk.assign(4 + 2 * kMaxEcc, 0);
            uint32_t bits = 256;
            memcpy(pk.data(), &bits, 4);
            PutField(pk.data() + 4, L, op.in2.data());
            PutField(pk.data() + 4 + L, L, op.in2.data() + 32);
          }
          op.fn = "SDF_HashInit";
          int rc = api.HashInit(s->h, alg, za ? pk.data() : nullptr, za ? op.in3.data() : nullptr,
                                za ? static_cast<unsigned>(op.in3.size()) : 0);
          if (rc != SDR_OK) return rc;
          op.fn = "SDF_HashUpdate";
          // SM3 of nothing is HashInit + HashFinal: some libraries refuse a 0-byte update, none needs one
          if (!op.in1.empty()) rc = api.HashUpdate(s->h, op.in1.data(), static_cast<unsigned>(op.in1.size()));
          op.out.resize(64);
          unsigned n = 64;
          int rcFinal = api.HashFinal(s->h, op.out.data(), &n);  // always finish: leaves the session clean
          if (rc != SDR_OK) return rc;
          op.fn = "SDF_HashFinal";
          op.outLen = n > 64 ? 64 : n;
          return rcFinal;
        },
        [](Napi::Env env, Op &op) -> Napi::Value { return Out(env, op.out.data(), op.outLen); },
        [&data, &pub, &id](Op &op) {
          op.in1 = std::move(data);
          op.in2 = std::move(pub);
          op.in3 = std::move(id);
        });
  }

  Napi::Value AccessRight(const Napi::CallbackInfo &info) {
    uint32_t index = U32(info, 0, "index");
    std::vector<uint8_t> pw = Bytes(info[1]);
    auto s = s_;
    if (!s->lib->api.GetPrivateKeyAccessRight)
      return Rejected(info.Env(), "ESYMBOL", "SDF_GetPrivateKeyAccessRight", "the library has no SDF_GetPrivateKeyAccessRight");
    return Start(
        info, "SDF_GetPrivateKeyAccessRight",
        [s, index](Op &op) {
          return s->lib->api.GetPrivateKeyAccessRight(s->h, index, op.in1.data(), static_cast<unsigned>(op.in1.size()));
        },
        nullptr, [&pw](Op &op) { op.in1 = std::move(pw); });
  }

  Napi::Value ExportPublicKey(const Napi::CallbackInfo &info, bool enc) {
    uint32_t index = U32(info, 0, "index");
    auto s = s_;
    const std::string fn = enc ? "SDF_ExportEncPublicKey_ECC" : "SDF_ExportSignPublicKey_ECC";
    auto f = enc ? s->lib->api.ExportEncPublicKey_ECC : s->lib->api.ExportSignPublicKey_ECC;
    if (!f) return Rejected(info.Env(), "ESYMBOL", fn, "the library has no " + fn);
    return Start(
        info, fn,
        [s, index, f](Op &op) {
          unsigned L = s->lib->eccLen;
          std::vector<uint8_t> pk(4 + 2 * kMaxEcc, 0);  // never smaller than the standard layout
          int rc = f(s->h, index, pk.data());
          if (rc != SDR_OK) return rc;
          op.out.resize(64);
          memcpy(op.out.data(), pk.data() + 4 + L - 32, 32);
          memcpy(op.out.data() + 32, pk.data() + 4 + 2 * L - 32, 32);
          op.outLen = 64;
          return rc;
        },
        [](Napi::Env env, Op &op) -> Napi::Value { return Out(env, op.out.data(), 64); });
  }
  Napi::Value ExportSignPublicKey(const Napi::CallbackInfo &info) { return ExportPublicKey(info, false); }
  Napi::Value ExportEncPublicKey(const Napi::CallbackInfo &info) { return ExportPublicKey(info, true); }

  Napi::Value InternalSign(const Napi::CallbackInfo &info) {
    uint32_t index = U32(info, 0, "index");
    std::vector<uint8_t> digest = Bytes(info[1]);
    auto s = s_;
    if (!s->lib->api.InternalSign_ECC)
      return Rejected(info.Env(), "ESYMBOL", "SDF_InternalSign_ECC", "the library has no SDF_InternalSign_ECC");
    return Start(
        info, "SDF_InternalSign_ECC",
        [s, index](Op &op) {
          unsigned L = s->lib->eccLen;
          std::vector<uint8_t> sig(2 * kMaxEcc, 0);  // a wrong quirk must not let the library overflow us
          int rc = s->lib->api.InternalSign_ECC(s->h, index, op.in1.data(), static_cast<unsigned>(op.in1.size()), sig.data());
          if (rc != SDR_OK) return rc;
          op.out.resize(64);
          memcpy(op.out.data(), sig.data() + L - 32, 32);
          memcpy(op.out.data() + 32, sig.data() + 2 * L - 32, 32);
          return rc;
        },
        [](Napi::Env env, Op &op) -> Napi::Value { return Out(env, op.out.data(), 64); },
        [&digest](Op &op) { op.in1 = std::move(digest); });
  }

  // Resolves true/false: SDR_VERIFYERR is an answer, not a failure.
  Napi::Value InternalVerify(const Napi::CallbackInfo &info) {
    uint32_t index = U32(info, 0, "index");
    std::vector<uint8_t> digest = Bytes(info[1]);
    std::vector<uint8_t> rs = Bytes(info[2]);
    if (rs.size() != 64) throw Napi::RangeError::New(info.Env(), "signature must be r‖s, 64 bytes");
    auto s = s_;
    if (!s->lib->api.InternalVerify_ECC)
      return Rejected(info.Env(), "ESYMBOL", "SDF_InternalVerify_ECC", "the library has no SDF_InternalVerify_ECC");
    return Start(
        info, "SDF_InternalVerify_ECC",
        [s, index](Op &op) {
          unsigned L = s->lib->eccLen;
          std::vector<uint8_t> sig(2 * kMaxEcc, 0);  // a wrong quirk must not let the library overflow us
          PutField(sig.data(), L, op.in2.data());
          PutField(sig.data() + L, L, op.in2.data() + 32);
          int rc = s->lib->api.InternalVerify_ECC(s->h, index, op.in1.data(), static_cast<unsigned>(op.in1.size()), sig.data());
          op.flag = rc == SDR_OK;
          return rc == SDR_VERIFYERR ? SDR_OK : rc;
        },
        [](Napi::Env env, Op &op) -> Napi::Value { return Napi::Boolean::New(env, op.flag); },
        [&digest, &rs](Op &op) {
          op.in1 = std::move(digest);
          op.in2 = std::move(rs);
        });
  }
};

class Library : public Napi::ObjectWrap<Library> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Library",
                       {
                           InstanceMethod<&Library::OpenDevice>("openDevice"),
                           InstanceMethod<&Library::CloseDevice>("closeDevice"),
                           InstanceMethod<&Library::OpenSession>("openSession"),
                           InstanceAccessor<&Library::Symbols>("symbols"),
                           InstanceAccessor<&Library::DeviceOpen>("deviceOpen"),
                           InstanceAccessor<&Library::Sessions>("sessions"),
                       });
  }

  // new Library(path, { eccLen: 32 | 64, keyHandleSymbol?: 'SDF_GetSymmKeyHandle' }): the key-handle
  // extension is looked up only when a quirk names it
  explicit Library(const Napi::CallbackInfo &info) : Napi::ObjectWrap<Library>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "library path expected");
    st_ = std::make_shared<LibState>();
    st_->path = info[0].As<Napi::String>().Utf8Value();
    if (info.Length() > 1 && info[1].IsObject()) {
      auto o = info[1].As<Napi::Object>();
      if (o.Has("eccLen") && o.Get("eccLen").IsNumber()) st_->eccLen = o.Get("eccLen").As<Napi::Number>().Uint32Value();
      if (o.Has("serialiseLifecycle") && o.Get("serialiseLifecycle").IsBoolean())
        st_->serialise = o.Get("serialiseLifecycle").As<Napi::Boolean>().Value();
      if (o.Has("keyHandleSymbol") && o.Get("keyHandleSymbol").IsString())
        st_->keyHandleSymbol = o.Get("keyHandleSymbol").As<Napi::String>().Utf8Value();
    }
    if (st_->eccLen != 32 && st_->eccLen != 64) throw Napi::RangeError::New(env, "eccLen must be 32 or 64");
    dlerror();
    st_->dl = dlopen(st_->path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!st_->dl) {
      const char *e = dlerror();
      throw MakeError(env, "ELOAD", "dlopen", std::string("cannot load ") + st_->path + ": " + (e ? e : "unknown"), 0);
    }
    Api &a = st_->api;
    std::string missing;
    auto need = [&](const char *name, auto &slot, bool required) {
      void *p = dlsym(st_->dl, name);
      slot = reinterpret_cast<std::remove_reference_t<decltype(slot)>>(p);
      if (p) st_->present.push_back(name);
      else if (required) missing += (missing.empty() ? "" : ", ") + std::string(name);
    };
    need("SDF_OpenDevice", a.OpenDevice, true);
    need("SDF_CloseDevice", a.CloseDevice, true);
    need("SDF_OpenSession", a.OpenSession, true);
    need("SDF_CloseSession", a.CloseSession, true);
    need("SDF_GetDeviceInfo", a.GetDeviceInfo, true);
    need("SDF_GenerateRandom", a.GenerateRandom, true);
    need("SDF_Encrypt", a.Encrypt, true);
    need("SDF_Decrypt", a.Decrypt, true);
    need("SDF_DestroyKey", a.DestroyKey, true);
    need("SDF_HashInit", a.HashInit, true);
    need("SDF_HashUpdate", a.HashUpdate, true);
    need("SDF_HashFinal", a.HashFinal, true);
    need("SDF_GetPrivateKeyAccessRight", a.GetPrivateKeyAccessRight, false);
    need("SDF_ReleasePrivateKeyAccessRight", a.ReleasePrivateKeyAccessRight, false);
    need("SDF_ExportSignPublicKey_ECC", a.ExportSignPublicKey_ECC, false);
    need("SDF_ImportKeyWithKEK", a.ImportKeyWithKEK, false);
    need("SDF_GenerateKeyWithKEK", a.GenerateKeyWithKEK, false);
    need("SDF_ImportKeyWithISK_ECC", a.ImportKeyWithISK_ECC, false);
    need("SDF_ExportEncPublicKey_ECC", a.ExportEncPublicKey_ECC, false);
    if (!st_->keyHandleSymbol.empty()) need(st_->keyHandleSymbol.c_str(), a.GetSymmKeyHandle, false);
    need("SDF_InternalSign_ECC", a.InternalSign_ECC, false);
    need("SDF_InternalVerify_ECC", a.InternalVerify_ECC, false);
    if (!missing.empty()) {
      dlclose(st_->dl);
      st_->dl = nullptr;
      auto err = MakeError(env, "ESYMBOL", "dlsym", st_->path + " lacks required SDF functions: " + missing, 0);
      err.Set("symbol", Napi::String::New(env, missing));
      throw err;
    }
  }

 private:
  std::shared_ptr<LibState> st_;

  Napi::Value Symbols(const Napi::CallbackInfo &info) {
    auto arr = Napi::Array::New(info.Env(), st_->present.size());
    for (size_t i = 0; i < st_->present.size(); i++) arr.Set(static_cast<uint32_t>(i), st_->present[i]);
    return arr;
  }
  Napi::Value DeviceOpen(const Napi::CallbackInfo &info) { return Napi::Boolean::New(info.Env(), st_->device != nullptr); }
  Napi::Value Sessions(const Napi::CallbackInfo &info) { return Napi::Number::New(info.Env(), st_->sessions); }

  Napi::Value OpenDevice(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (st_->device || st_->deviceBusy) return Rejected(env, "EBUSY", "SDF_OpenDevice", "device already open or opening");
    auto st = st_;
    st->deviceBusy = true;
    auto *op = new Op(
        env, "SDF_OpenDevice",
        [st](Op &op) {
          std::unique_lock<std::mutex> lock(st->lifecycle, std::defer_lock);
          if (st->serialise) lock.lock();
          return st->api.OpenDevice(&op.handle);
        },
        [st](Napi::Env env, Op &op) -> Napi::Value {
          st->device = op.handle;
          return env.Undefined();
        },
        [st](Op &) { st->deviceBusy = false; });
    return op->Queue_();
  }

  Napi::Value CloseDevice(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (!st_->device) {
      auto d = Napi::Promise::Deferred::New(env);
      d.Resolve(env.Undefined());
      return d.Promise();
    }
    if (st_->sessions > 0 || st_->deviceBusy)
      return Rejected(env, "EBUSY", "SDF_CloseDevice", std::to_string(st_->sessions) + " sessions still open");
    auto st = st_;
    void *dev = st->device;
    st->device = nullptr;  // no new sessions from here on
    st->deviceBusy = true;
    auto *op = new Op(
        env, "SDF_CloseDevice",
        [st, dev](Op &) {
          std::unique_lock<std::mutex> lock(st->lifecycle, std::defer_lock);
          if (st->serialise) lock.lock();
          return st->api.CloseDevice(dev);
        },
        nullptr,
                      [st](Op &) { st->deviceBusy = false; });
    return op->Queue_();
  }

  Napi::Value OpenSession(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (!st_->device) return Rejected(env, "ECLOSED", "SDF_OpenSession", "device is not open");
    auto st = st_;
    st->sessions++;  // counted from now so closeDevice waits for it
    auto *op = new Op(
        env, "SDF_OpenSession",
        [st](Op &op) {
          std::unique_lock<std::mutex> lock(st->lifecycle, std::defer_lock);
          if (st->serialise) lock.lock();
          return st->api.OpenSession(st->device, &op.handle);
        },
        [st](Napi::Env env, Op &op) -> Napi::Value {
          auto ss = std::make_shared<SessState>();
          // (sessions was counted when the call was queued)
          ss->lib = st;
          ss->h = op.handle;
          auto *ext = new std::shared_ptr<SessState>(ss);
          AddonData *data = env.GetInstanceData<AddonData>();
          return data->sessionCtor.New({Napi::External<std::shared_ptr<SessState>>::New(env, ext)});
        },
        [st](Op &op) {
          if (op.rc != SDR_OK || !op.errCode.empty()) st->sessions--;  // the open failed: nothing to count
        });
    return op->Queue_();
  }
};

Napi::Object InitAll(Napi::Env env, Napi::Object exports) {
  auto *data = new AddonData();
  data->sessionCtor = Napi::Persistent(Session::Init(env));
  env.SetInstanceData<AddonData>(data);
  exports.Set("Session", data->sessionCtor.Value());
  exports.Set("Library", Library::Init(env));
  exports.Set("SDR_BASE", Napi::Number::New(env, SDR_BASE));
  return exports;
}

}  // namespace

NODE_API_MODULE(sdf_bridge, InitAll)
