// 256-entry int8 → int8 tables for element-wise activations (SiLU, sigmoid, GELU, hard-swish, …).

/// An int8 → int8 function as a 256-entry table, built once from the scales.
///
/// Entry for input code `q`: `clamp(round(f(s_x·(q − z_x)) / s_y) + z_y, −128, 127)`, with `f`
/// evaluated in double precision by `DeterministicMath` (IEEE basic operations only, so the table
/// is bit-identical on every platform) and rounding half away from zero. Error bound: 0.5 output
/// LSB against the exact function of the dequantised input wherever the output is not saturated
/// (plus ≤ 1e-12 LSB of double evaluation, which matters only at exact ties).
public struct ActivationTable: Sendable, Equatable {
    public enum Function: String, Sendable, CaseIterable {
        /// x · sigmoid(x) (swish, MobileViT's activation).
        case silu
        case sigmoid
        /// x · Φ(x), exact erf form (PyTorch `gelu`, approximate="none").
        case gelu
        /// x · (1 + tanh(√(2/π)·(x + 0.044715 x³))) / 2 (PyTorch approximate="tanh").
        case geluTanh
        /// x · relu6(x + 3) / 6.
        case hardSwish
        /// relu6(x + 3) / 6.
        case hardSigmoid
        case relu
        case relu6
        case tanh
        /// y = x (a pure rescale).
        case identity

        /// The function in double precision (deterministic).
        public func evaluate(_ x: Double) -> Double {
            switch self {
            case .silu: return x * DeterministicMath.sigmoid(x)
            case .sigmoid: return DeterministicMath.sigmoid(x)
            case .gelu: return 0.5 * x * (1 + DeterministicMath.erf(x * 0.70710678118654752440))
            case .geluTanh:
                let k = 0.79788456080286535588  // √(2/π)
                return 0.5 * x * (1 + DeterministicMath.tanh(k * (x + 0.044715 * x * x * x)))
            case .hardSwish: return x * min(max(x + 3, 0), 6) / 6
            case .hardSigmoid: return min(max(x + 3, 0), 6) / 6
            case .relu: return max(x, 0)
            case .relu6: return min(max(x, 0), 6)
            case .tanh: return DeterministicMath.tanh(x)
            case .identity: return x
            }
        }
    }

    /// Indexed by `Int(q) + 128`.
    public var entries: [Int8]

    public init(entries: [Int8]) throws {
        guard entries.count == 256 else { throw NonlinearParameterError("activation table needs 256 entries, got \(entries.count)") }
        self.entries = entries
    }

    /// The table of `function` between the given input and output quantisations.
    public static func make(function: Function, inputScale: Double, inputZeroPoint: Int32,
                            outputScale: Double, outputZeroPoint: Int32) throws -> ActivationTable {
        let sx = try NonlinearCheck.scale(inputScale, "activation input scale")
        let sy = try NonlinearCheck.scale(outputScale, "activation output scale")
        let zx = try NonlinearCheck.zeroPoint(inputZeroPoint, "activation input zero point")
        let zy = try NonlinearCheck.zeroPoint(outputZeroPoint, "activation output zero point")
        var t = [Int8](repeating: 0, count: 256)
        for q in -128...127 {
            let x = sx * Double(Int32(q) - zx)
            let v = (function.evaluate(x) / sy).rounded(.toNearestOrAwayFromZero) + Double(zy)
            t[q + 128] = Int8(min(max(v, -128), 127))
        }
        return try ActivationTable(entries: t)
    }
}
