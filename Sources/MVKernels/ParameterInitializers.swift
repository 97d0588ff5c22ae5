// Public factories calling the memberwise initialisers for the kernels' prepared parameters, so an
// executor can rebuild them from integers stored in a model file (the `make` functions, which use
// floating point, run only in the compiler). Each result is validated: values that would overflow
// the fixed-point arithmetic throw instead of computing garbage.

extension AddInt8.Parameters {
    public static func restored(inputZeroPointA: Int32, inputZeroPointB: Int32, multiplierA: Int32, multiplierB: Int32,
                shift: Int32, outputZeroPoint: Int32, clampMin: Int32, clampMax: Int32) throws -> Self {
        try Self(inputZeroPointA: inputZeroPointA, inputZeroPointB: inputZeroPointB, multiplierA: multiplierA, multiplierB: multiplierB, shift: shift, outputZeroPoint: outputZeroPoint, clampMin: clampMin, clampMax: clampMax).validated()
    }
}

extension IntegerLayerNorm.Parameters {
    public static func restored(channels: Int, varianceShift: Int32, epsilonTerm: UInt64, gammaMultipliers: [Int32], shifts: [Int32],
                biases: [Int32], outputZeroPoint: Int32) throws -> Self {
        try Self(channels: channels, varianceShift: varianceShift, epsilonTerm: epsilonTerm, gammaMultipliers: gammaMultipliers, shifts: shifts, biases: biases, outputZeroPoint: outputZeroPoint).validated()
    }
}

extension IntegerSoftmax.Parameters {
    public static func restored(expPreShift: Int32, expLeftShift: Int32, expMultiplier: UInt32, outputMultiplier: UInt32,
                outputShift: Int32, outputZeroPoint: Int32, inputScale: Double, outputScale: Double) throws -> Self {
        try Self(expPreShift: expPreShift, expLeftShift: expLeftShift, expMultiplier: expMultiplier, outputMultiplier: outputMultiplier, outputShift: outputShift, outputZeroPoint: outputZeroPoint, inputScale: inputScale, outputScale: outputScale).validated()
    }
}

extension GlobalAveragePoolInt8.Parameters {
    public static func restored(pixelCount: Int, inputZeroPoint: Int32, preShift: Int32, multiplier: Int32, shift: Int32,
                outputZeroPoint: Int32) throws -> Self {
        try Self(pixelCount: pixelCount, inputZeroPoint: inputZeroPoint, preShift: preShift, multiplier: multiplier, shift: shift, outputZeroPoint: outputZeroPoint).validated()
    }
}
