import IngotFormats

/// Totals over a set of tensors: parameters, bytes, bits per weight, and the same per type.
public struct Inventory: Equatable, Sendable {
    public struct TypeTotal: Equatable, Sendable {
        public var typeName: String
        public var tensorCount: Int
        public var parameters: Int
        public var bytes: Int
        public var bitsPerWeight: Double { parameters > 0 ? Double(bytes) * 8 / Double(parameters) : 0 }
    }

    public var tensorCount: Int
    public var parameters: Int
    public var bytes: Int
    /// Per type, largest byte share first.
    public var byType: [TypeTotal]
    public var bitsPerWeight: Double { parameters > 0 ? Double(bytes) * 8 / Double(parameters) : 0 }

    public init(_ tensors: [TensorEntry]) {
        tensorCount = tensors.count
        parameters = tensors.reduce(0) { $0 + $1.elementCount }
        bytes = tensors.reduce(0) { $0 + $1.byteCount }
        var totals: [String: TypeTotal] = [:]
        for t in tensors {
            totals[t.typeName, default: TypeTotal(typeName: t.typeName, tensorCount: 0, parameters: 0, bytes: 0)].tensorCount += 1
            totals[t.typeName]?.parameters += t.elementCount
            totals[t.typeName]?.bytes += t.byteCount
        }
        byType = totals.values.sorted { ($0.bytes, $1.typeName) > ($1.bytes, $0.typeName) }
    }

    public var json: JSONValue {
        .object(JSONObject([
            ("tensorCount", JSONValue(tensorCount)),
            ("parameters", JSONValue(parameters)),
            ("bytes", JSONValue(bytes)),
            ("bitsPerWeight", .double(bitsPerWeight)),
            ("byType", .array(byType.map { t in
                .object(JSONObject([
                    ("type", .string(t.typeName)),
                    ("tensorCount", JSONValue(t.tensorCount)),
                    ("parameters", JSONValue(t.parameters)),
                    ("bytes", JSONValue(t.bytes)),
                    ("bitsPerWeight", .double(t.bitsPerWeight)),
                ]))
            })),
        ]))
    }
}
