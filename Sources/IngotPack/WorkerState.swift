import IngotFormats

/// What one worker keeps between jobs: zstd contexts and a scratch buffer.
final class WorkerState: @unchecked Sendable {
    let zstd = ZstdContexts()
    let scratch = ReusableBuffer()
    /// Staging for the palette transform's low bytes and indices.
    let lows = ReusableBuffer()
    let indices = ReusableBuffer()
    private var tables: Palette16.Tables?
    var paletteTables: Palette16.Tables {
        if let t = tables { return t }
        let t = Palette16.Tables()
        tables = t
        return t
    }

    static func pool(_ n: Int) -> [WorkerState] { (0 ..< max(1, n)).map { _ in WorkerState() } }
}
