import IngotFormats
import IngotNumerics

/// How far each weight of a model lies from the same weight of its base: the relative RMS difference
/// ‖W − W_base‖ / ‖W_base‖ of the dequantized values, tensor by tensor, streamed (one tensor of each in memory).
public enum WeightDifference {
    public struct Entry: Sendable {
        public var name: String
        public var type: GGMLType, baseType: GGMLType
        public var elements: Int
        public var relativeRMS: Double
    }

    /// Every tensor both hold with the same shape, in the model's order; the others are left out.
    public static func compare(_ model: any GGUFTensorSource, base: any GGUFTensorSource) throws -> [Entry] {
        let byName = Dictionary(base.tensors.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var out: [Entry] = []
        for t in model.tensors {
            guard let b = byName[t.name], b.dimensions == t.dimensions, t.elementCount > 0,
                  BlockCodec.canDequantize(t.type), BlockCodec.canDequantize(b.type) else { continue }
            let x = try values(model, t), y = try values(base, b)
            var dd = 0.0, yy = 0.0
            for i in 0..<x.count {
                let d = Double(x[i] - y[i])
                dd += d * d
                yy += Double(y[i]) * Double(y[i])
            }
            out.append(Entry(name: t.name, type: t.type, baseType: b.type, elements: t.elementCount,
                             relativeRMS: yy > 0 ? (dd / yy).squareRoot() : (dd > 0 ? .infinity : 0)))
        }
        return out
    }

    static func values(_ source: any GGUFTensorSource, _ t: GGUFTensorInfo) throws -> [Float] {
        var v = [Float](repeating: 0, count: t.elementCount)
        try source.withBytes(of: t) { data in
            v.withUnsafeMutableBufferPointer { BlockCodec.dequantize(t.type, data.baseAddress!, count: t.elementCount, into: $0.baseAddress!) }
        }
        source.release(t, bytes: 0..<t.byteCount)
        return v
    }
}
