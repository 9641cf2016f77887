/// Tensors as GGUF describes them (llama.cpp's names and keys, dims fastest-first, GGML types) with their bytes:
/// a GGUF file, or a model converted on the fly (a Hugging Face folder seen through its architecture's table), so
/// that quantization reads either without an intermediate file.
public protocol GGUFTensorSource: AnyObject {
    var path: String { get }
    var metadata: [GGUFKeyValue] { get }
    var tensors: [GGUFTensorInfo] { get }
    /// Calls `body` with the tensor's bytes, valid only during the call.
    func withBytes<R>(of tensor: GGUFTensorInfo, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R
    /// The bytes `range` of the tensor will not be read again (a file drops those pages).
    func release(_ tensor: GGUFTensorInfo, bytes range: Range<Int>)
    /// Where the tensor's bytes start in the file, for errors (nil where they are converted on the fly).
    func fileOffset(of tensor: GGUFTensorInfo) -> Int?
}

extension GGUFTensorSource {
    public func fileOffset(of tensor: GGUFTensorInfo) -> Int? { nil }
}

extension GGUFFile: GGUFTensorSource {
    public func withBytes<R>(of tensor: GGUFTensorInfo, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        try body(data(for: tensor))
    }

    public func release(_ tensor: GGUFTensorInfo, bytes range: Range<Int>) {
        file.release(offset: dataOffset + tensor.offset + range.lowerBound, count: range.count)
    }

    public func fileOffset(of tensor: GGUFTensorInfo) -> Int? { dataOffset + tensor.offset }
}
