// Gradients and metrics of many 2-H-3 MLPs (ReLU, softmax cross-entropy), one replica
// per SIMD lane: every operation below is the scalar formula of one replica, applied to
// L replicas at once (a lane group). Lanes never mix, so a replica's numbers do not
// depend on its neighbours, and no horizontal reductions are needed.
//
// Memory layout (T = float or double, L = VBYTES / sizeof(T) lanes, G lane groups):
//   W1[g][i][j][lane]  i = 0, 1: hidden kernel rows; i = 2: hidden bias   (G, 3, H, L)
//   W2[g][k][j][lane]  j < H: output kernel (transposed); j = H: bias    (G, 3, H+1, L)
//   x[g][i][b][lane], y[g][b][lane]: a replica's training inputs and labels (as T),
//   the samples of an epoch in the replica's order
// Gradients GW1, GW2 have the layouts of W1, W2.
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace {

constexpr int C = 3;  // classes
constexpr int S = 4;  // samples per block: each weight load serves S samples

// The vector width is the widest the target CPU computes natively: a wider GCC vector
// than the hardware's is split into pieces, and some of its operations (conversions,
// selects, integer shifts) then fall back to scalar code, ten times slower.
#if defined(__AVX512F__)
constexpr int VBYTES = 64;
#elif defined(__AVX__)
constexpr int VBYTES = 32;
#else
constexpr int VBYTES = 16;  // SSE2, NEON
#endif

template <class T> struct Lanes;
template <> struct Lanes<float> {
  typedef float V __attribute__((vector_size(VBYTES)));
  typedef int32_t I __attribute__((vector_size(VBYTES)));
  typedef double D __attribute__((vector_size(2 * VBYTES)));
  static constexpr int L = VBYTES / 4;
};
template <> struct Lanes<double> {
  typedef double V __attribute__((vector_size(VBYTES)));
  typedef int64_t I __attribute__((vector_size(VBYTES)));
  typedef double D __attribute__((vector_size(VBYTES)));
  static constexpr int L = VBYTES / 8;
};

template <class V> inline V load(const void* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class V> inline void store(void* p, V v) { std::memcpy(p, &v, sizeof v); }

// exp(x) to about one ulp: 2^n e^r with |r| <= ln(2)/2, Taylor polynomial of e^r.
// Underflow below the normal range gives 0; NaN gives NaN.
inline Lanes<float>::V exp_lanes(Lanes<float>::V x) {
  typedef Lanes<float>::V V;
  typedef Lanes<float>::I I;
  const float lo = -87.0f, hi = 88.0f, shift = 12582912.0f;  // 1.5 * 2^23
  V xc = x >= lo ? x : lo;
  xc = xc <= hi ? xc : hi;
  V n = (xc * 1.44269504088896341f + shift) - shift;
  V r = xc - n * 0.693359375f - n * -2.12194440e-4f;
  V p = V{} + 1.0f / 5040;
  p = p * r + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  I bits = (__builtin_convertvector(n, I) + 127) << 23;
  V res = p * (V)bits;
  res = x < lo ? 0.0f : res;
  res = x > hi ? __builtin_inff() : res;
  return x == x ? res : x;
}

inline Lanes<double>::V exp_lanes(Lanes<double>::V x) {
  typedef Lanes<double>::V V;
  typedef Lanes<double>::I I;
  const double lo = -708.0, hi = 709.0, shift = 6755399441055744.0;  // 1.5 * 2^52
  V xc = x >= lo ? x : lo;
  xc = xc <= hi ? xc : hi;
  V n = (xc * 1.44269504088896338700e+00 + shift) - shift;
  V r = xc - n * 6.93147180369123816490e-01 - n * 1.90821492927058770002e-10;
  const double inv_factorial[14] = {1.0,
                                    1.0,
                                    1.0 / 2,
                                    1.0 / 6,
                                    1.0 / 24,
                                    1.0 / 120,
                                    1.0 / 720,
                                    1.0 / 5040,
                                    1.0 / 40320,
                                    1.0 / 362880,
                                    1.0 / 3628800,
                                    1.0 / 39916800,
                                    1.0 / 479001600,
                                    1.0 / 6227020800.0};
  V p = V{} + inv_factorial[13];
  for (int k = 12; k >= 0; --k) p = p * r + inv_factorial[k];
  I bits = (__builtin_convertvector(n, I) + 1023) << 52;
  V res = p * (V)bits;
  res = x < lo ? 0.0 : res;
  res = x > hi ? __builtin_inf() : res;
  return x == x ? res : x;
}

// log(s) for s >= 1 (a sum of exponentials whose largest is e^0), +inf and NaN:
// s = 2^e m with m in [sqrt(1/2), sqrt(2)), log m = 2 atanh(f), f = (m - 1) / (m + 1).
template <class T> inline typename Lanes<T>::V log_lanes(typename Lanes<T>::V s) {
  typedef typename Lanes<T>::V V;
  typedef typename Lanes<T>::I I;
  constexpr bool single = sizeof(T) == 4;
  constexpr int mant = single ? 23 : 52;
  constexpr int bias = single ? 127 : 1023;
  constexpr int terms = single ? 6 : 12;  // series terms w^k / (2k + 1), k < terms
  const I exp_mask = I{} + (single ? 0xff : 0x7ff);
  I bits = (I)s;
  I e = ((bits >> mant) & exp_mask) - bias;
  I one_bits = I{} + (int64_t(bias) << mant);
  I mant_mask = I{} + ((int64_t(1) << mant) - 1);
  V m = (V)((bits & mant_mask) | one_bits);
  auto big = m > T(1.41421356237309504880);
  m = big ? m * T(0.5) : m;
  e = e - big;  // big is -1 where true
  V f = (m - 1) / (m + 1);
  V w = f * f;
  V p = V{} + T(1) / (2 * (terms - 1) + 1);
  for (int k = terms - 2; k >= 0; --k) p = p * w + T(1) / (2 * k + 1);
  V ef = __builtin_convertvector(e, V);
  V tail = ef * T(1.90821492927058770002e-10) + 2 * f * p;
  V res = ef * T(6.93147180369123816490e-01) + tail;
  return s < __builtin_inf() ? res : s;
}

// Loss, correctness and (softmax - onehot) / batch of one sample's logits.
template <class T>
inline void softmax_cross_entropy(const typename Lanes<T>::V (&logit)[C],
                                  typename Lanes<T>::V label, T batch,
                                  typename Lanes<T>::V (&grad)[C],
                                  typename Lanes<T>::V& loss,
                                  typename Lanes<T>::V& correct) {
  typedef typename Lanes<T>::V V;
  V top = logit[0];
  for (int k = 1; k < C; ++k) top = logit[k] > top ? logit[k] : top;
  V e[C];
  V total = V{};
  for (int k = 0; k < C; ++k) {
    e[k] = exp_lanes(logit[k] - top);
    total += e[k];
  }
  V picked = logit[C - 1];
  for (int k = C - 2; k >= 0; --k) picked = label == T(k) ? logit[k] : picked;
  loss = log_lanes<T>(total) + top - picked;
  // argmax takes the first maximal logit: classes before the label must be lower.
  auto ok = (logit[0] < picked) | ((logit[0] == picked) & (label <= T(0)));
  for (int k = 1; k < C; ++k)
    ok = ok & ((logit[k] < picked) | ((logit[k] == picked) & (label <= T(k))));
  correct = ok ? T(1) : T(0);
  for (int k = 0; k < C; ++k) {
    V p = e[k] / total;
    grad[k] = (p - (label == T(k) ? T(1) : T(0))) / batch;
  }
}

template <class T> struct Net {
  typedef typename Lanes<T>::V V;
  int H;
  const V* W1;  // (3, H)
  const V* W2;  // (C, H + 1)

  // Hidden activations h[s][j] and logits of S samples.
  template <int NS>
  inline void forward(const V (&x0)[NS], const V (&x1)[NS], V* h,
                      V (&logit)[NS][C]) const {
    for (int s = 0; s < NS; ++s)
      for (int k = 0; k < C; ++k) logit[s][k] = W2[k * (H + 1) + H];
    for (int j = 0; j < H; ++j) {
      V w0 = W1[j], w1 = W1[H + j], b = W1[2 * H + j];
      V a[C];
      for (int k = 0; k < C; ++k) a[k] = W2[k * (H + 1) + j];
      for (int s = 0; s < NS; ++s) {
        V z = x0[s] * w0 + x1[s] * w1 + b;
        z = z < 0 ? T(0) : z;  // ReLU; NaN stays NaN as in clamp_min
        if (h) h[s * H + j] = z;
        for (int k = 0; k < C; ++k) logit[s][k] += a[k] * z;
      }
    }
  }
};

// Hidden activations of one block of samples, kept for the backward pass.
template <class T> struct Work {
  typedef typename Lanes<T>::V V;
  V* h;
  explicit Work(int H) {
    h = static_cast<V*>(std::aligned_alloc(64, sizeof(V) * S * H));
  }
  ~Work() { std::free(h); }
};

template <class T, int NS>
inline void train_block(const Net<T>& net, typename Lanes<T>::V* GW1,
                        typename Lanes<T>::V* GW2, const T* x0_, const T* x1_,
                        const T* y, T batch,
                        typename Lanes<T>::V* h, typename Lanes<T>::D& loss_sum,
                        typename Lanes<T>::D& correct_sum) {
  typedef typename Lanes<T>::V V;
  typedef typename Lanes<T>::D D;
  constexpr int L = Lanes<T>::L;
  const int H = net.H;
  V x0[NS], x1[NS], label[NS], logit[NS][C], g[NS][C];
  for (int s = 0; s < NS; ++s) {
    x0[s] = load<V>(x0_ + s * L);
    x1[s] = load<V>(x1_ + s * L);
    label[s] = load<V>(y + s * L);
  }
  net.template forward<NS>(x0, x1, h, logit);
  for (int s = 0; s < NS; ++s) {
    V loss, correct;
    softmax_cross_entropy<T>(logit[s], label[s], batch, g[s], loss, correct);
    loss_sum += __builtin_convertvector(loss, D);
    correct_sum += __builtin_convertvector(correct, D);
  }
  for (int k = 0; k < C; ++k) {
    V sum = GW2[k * (H + 1) + H];
    for (int s = 0; s < NS; ++s) sum += g[s][k];
    GW2[k * (H + 1) + H] = sum;
  }
  for (int j = 0; j < H; ++j) {
    V a[C], z[NS], dz[NS];
    for (int k = 0; k < C; ++k) a[k] = net.W2[k * (H + 1) + j];
    for (int s = 0; s < NS; ++s) z[s] = h[s * H + j];
    for (int k = 0; k < C; ++k) {
      V sum = GW2[k * (H + 1) + j];
      for (int s = 0; s < NS; ++s) sum += g[s][k] * z[s];
      GW2[k * (H + 1) + j] = sum;
    }
    for (int s = 0; s < NS; ++s) {
      V dh = g[s][0] * a[0];
      for (int k = 1; k < C; ++k) dh += g[s][k] * a[k];
      dz[s] = z[s] > 0 ? dh : T(0);  // as threshold_backward: pass where output > 0
    }
    V s0 = GW1[j], s1 = GW1[H + j], s2 = GW1[2 * H + j];
    for (int s = 0; s < NS; ++s) {
      s0 += x0[s] * dz[s];
      s1 += x1[s] * dz[s];
      s2 += dz[s];
    }
    GW1[j] = s0;
    GW1[H + j] = s1;
    GW1[2 * H + j] = s2;
  }
}

template <class T>
void train_batch(int64_t G, int64_t H, int64_t B, const T* W1, const T* W2, T* GW1,
                 T* GW2, const T* x, const T* y, int64_t n, double* loss_sum,
                 double* correct_sum) {
  typedef typename Lanes<T>::V V;
  typedef typename Lanes<T>::D D;
  constexpr int L = Lanes<T>::L;
  const int64_t p1 = 3 * H, p2 = C * (H + 1);  // vectors per group
  Work<T> work(H);
  for (int64_t g = 0; g < G; ++g) {
    Net<T> net{int(H), reinterpret_cast<const V*>(W1) + g * p1,
               reinterpret_cast<const V*>(W2) + g * p2};
    V* gw1 = reinterpret_cast<V*>(GW1) + g * p1;
    V* gw2 = reinterpret_cast<V*>(GW2) + g * p2;
    std::memset(static_cast<void*>(gw1), 0, sizeof(V) * p1);
    std::memset(static_cast<void*>(gw2), 0, sizeof(V) * p2);
    const T* x0 = x + g * 2 * n * L;
    const T* x1 = x0 + n * L;
    const T* yg = y + g * n * L;
    D loss = load<D>(loss_sum + g * L), correct = load<D>(correct_sum + g * L);
    int64_t b = 0;
    for (; b + S <= B; b += S)
      train_block<T, S>(net, gw1, gw2, x0 + b * L, x1 + b * L, yg + b * L, T(B),
                        work.h, loss, correct);
    for (; b < B; ++b)
      train_block<T, 1>(net, gw1, gw2, x0 + b * L, x1 + b * L, yg + b * L, T(B),
                        work.h, loss, correct);
    store(loss_sum + g * L, loss);
    store(correct_sum + g * L, correct);
  }
}

template <class T, int NS>
inline void evaluate_block(const Net<T>& net, const T* x, const T* y,
                           typename Lanes<T>::D& loss_sum,
                           typename Lanes<T>::D& correct_sum) {
  typedef typename Lanes<T>::V V;
  typedef typename Lanes<T>::D D;
  V x0[NS], x1[NS], logit[NS][C], g[NS][C];
  for (int s = 0; s < NS; ++s) {
    x0[s] = V{} + x[2 * s];
    x1[s] = V{} + x[2 * s + 1];
  }
  net.template forward<NS>(x0, x1, nullptr, logit);
  for (int s = 0; s < NS; ++s) {
    V loss, correct;
    softmax_cross_entropy<T>(logit[s], V{} + y[s], T(1), g[s], loss, correct);
    loss_sum += __builtin_convertvector(loss, D);
    correct_sum += __builtin_convertvector(correct, D);
  }
}

// Summed loss and number of correct samples of every replica on n shared samples.
template <class T>
void evaluate(int64_t G, int64_t H, int64_t n, const T* W1, const T* W2, const T* x,
              const T* y, double* loss_sum, double* correct_sum) {
  typedef typename Lanes<T>::V V;
  typedef typename Lanes<T>::D D;
  constexpr int L = Lanes<T>::L;
  for (int64_t g = 0; g < G; ++g) {
    Net<T> net{int(H), reinterpret_cast<const V*>(W1) + g * 3 * H,
               reinterpret_cast<const V*>(W2) + g * C * (H + 1)};
    D loss = {}, correct = {};
    int64_t b = 0;
    for (; b + S <= n; b += S)
      evaluate_block<T, S>(net, x + 2 * b, y + b, loss, correct);
    for (; b < n; ++b) evaluate_block<T, 1>(net, x + 2 * b, y + b, loss, correct);
    store(loss_sum + g * L, loss);
    store(correct_sum + g * L, correct);
  }
}

// Each replica's training samples for one epoch, in lane layout: x (G, 2, n, L) and
// y (G, n, L), from the epoch's orders (one row of n sample indices per seed, shared by
// the replicas of that seed) and the row of each replica (G * L entries).
template <class T>
void gather_epoch(int64_t G, int64_t n, const int64_t* rows, const int64_t* row_of,
                  const T* x_train, const T* y_train, T* x, T* y) {
  constexpr int L = Lanes<T>::L;
  for (int64_t g = 0; g < G; ++g) {
    T* x0 = x + g * 2 * n * L;
    T* x1 = x0 + n * L;
    T* yg = y + g * n * L;
    for (int l = 0; l < L; ++l) {
      const int64_t* order = rows + row_of[g * L + l] * n;
      for (int64_t b = 0; b < n; ++b) {
        const int64_t i = order[b];
        x0[b * L + l] = x_train[2 * i];
        x1[b * L + l] = x_train[2 * i + 1];
        yg[b * L + l] = y_train[i];
      }
    }
  }
}

}  // namespace

extern "C" {
int lanes_f32() { return Lanes<float>::L; }
int lanes_f64() { return Lanes<double>::L; }
void train_batch_f32(int64_t G, int64_t H, int64_t B, const float* W1, const float* W2,
                     float* GW1, float* GW2, const float* x, const float* y, int64_t n,
                     double* loss_sum, double* correct_sum) {
  train_batch<float>(G, H, B, W1, W2, GW1, GW2, x, y, n, loss_sum, correct_sum);
}
void train_batch_f64(int64_t G, int64_t H, int64_t B, const double* W1,
                     const double* W2, double* GW1, double* GW2, const double* x,
                     const double* y, int64_t n, double* loss_sum,
                     double* correct_sum) {
  train_batch<double>(G, H, B, W1, W2, GW1, GW2, x, y, n, loss_sum, correct_sum);
}
void gather_epoch_f32(int64_t G, int64_t n, const int64_t* rows, const int64_t* row_of,
                      const float* x_train, const float* y_train, float* x, float* y) {
  gather_epoch<float>(G, n, rows, row_of, x_train, y_train, x, y);
}
void gather_epoch_f64(int64_t G, int64_t n, const int64_t* rows, const int64_t* row_of,
                      const double* x_train, const double* y_train, double* x,
                      double* y) {
  gather_epoch<double>(G, n, rows, row_of, x_train, y_train, x, y);
}
void evaluate_f32(int64_t G, int64_t H, int64_t n, const float* W1, const float* W2,
                  const float* x, const float* y, double* loss_sum,
                  double* correct_sum) {
  evaluate<float>(G, H, n, W1, W2, x, y, loss_sum, correct_sum);
}
void evaluate_f64(int64_t G, int64_t H, int64_t n, const double* W1, const double* W2,
                  const double* x, const double* y, double* loss_sum,
                  double* correct_sum) {
  evaluate<double>(G, H, n, W1, W2, x, y, loss_sum, correct_sum);
}
}
