import MVKernels

/// Deterministic SplitMix64 generator for the int8 kernel tests.
struct Int8TestRNG {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in lo...hi.
    mutating func int(_ lo: Int, _ hi: Int) -> Int {
        lo + Int(next() % UInt64(hi - lo + 1))
    }
    mutating func int8(_ lo: Int = -128, _ hi: Int = 127) -> Int8 { Int8(int(lo, hi)) }
    mutating func int8s(_ count: Int, _ lo: Int = -128, _ hi: Int = 127) -> [Int8] {
        (0..<count).map { _ in int8(lo, hi) }
    }
    mutating func bool() -> Bool { next() & 1 == 1 }
    /// Uniform double in [0, 1).
    mutating func unit() -> Double { Double(next() >> 11) / 9007199254740992.0 }
}

/// A random requantisation pair: mostly right shifts, sometimes left shifts (real ≥ 1).
func randomRequantPair(_ rng: inout Int8TestRNG, allowNegativeShift: Bool = true) -> (Int32, Int32) {
    let m = Int32(rng.int(1 << 30, Int(Int32.max)))
    var s = Int32(rng.int(0, 20))
    if allowNegativeShift && rng.int(0, 5) == 0 { s = Int32(rng.int(-8, -1)) }
    if rng.int(0, 15) == 0 { s = Int32(rng.int(30, 62)) }
    return (m, s)
}

/// A random 256-entry table.
func randomLUT(_ rng: inout Int8TestRNG) -> [Int8] { rng.int8s(256) }
