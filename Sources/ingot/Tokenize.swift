import ArgumentParser
import IngotFormats
import IngotConvert
import IngotModel

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Turn text into the token ids of a model's tokenizer.",
        discussion: """
        Reads the tokenizer from a GGUF file (tokenizer.ggml.*) or a Hugging Face tokenizer.json and prints the \
        ids, as llama.cpp's llama_tokenize gives them. BOS/EOS are added where the model asks for them \
        (--no-special leaves them out); control tokens written in the text are recognised only with \
        --parse-special.
        """
    )

    @Argument(help: "A .gguf model (or vocabulary-only GGUF), a Hugging Face folder, or a tokenizer.json.")
    var model: String

    @Option(name: .long, help: "The text to tokenize, as a UTF-8 file.")
    var text: String?

    @Option(name: .long, help: "The text to tokenize, given on the command line.")
    var prompt: String?

    @Option(name: .customLong("each"), help: "A JSON file holding an array of strings: tokenize each one on its own.")
    var each: String?

    @Flag(name: .customLong("no-special"), help: "Do not add BOS/EOS.")
    var noSpecial = false

    @Flag(name: .customLong("parse-special"), help: "Recognise control tokens written in the text.")
    var parseSpecial = false

    @Flag(name: .long, help: "Print each token with its text.")
    var pieces = false

    @OptionGroup var common: CommonOptions

    func validate() throws {
        if [text, prompt, each].compactMap({ $0 }).count != 1 {
            throw ValidationError("give exactly one of --text FILE, --prompt STRING or --each FILE")
        }
    }

    func run() throws {
        try reportingErrors(json: common.json) {
            let tokenizer = try TokenizerLoader.load(model)
            if let each {
                let data = try MappedFile(path: each)
                guard case .array(let items) = try JSONParser.parse(data.bytes, field: each) else {
                    throw FormatError(.invalidJSON, field: each, offset: 0, "--each needs a JSON array of strings", path: each)
                }
                var out: [JSONValue] = []
                for (i, item) in items.enumerated() {
                    guard let s = item.stringValue else {
                        throw FormatError(.invalidJSON, field: "\(each)[\(i)]", offset: nil, "every element must be a string", path: each)
                    }
                    let ids = tokenizer.encode(Array(s.utf8), addSpecial: !noSpecial, parseSpecial: parseSpecial)
                    out.append(.array(ids.map { JSONValue(Int($0)) }))
                }
                print(JSONValue.array(out).serialized(pretty: false))
                return
            }
            let bytes: [UInt8]
            if let text {
                let file = try MappedFile(path: text)
                bytes = Array(file.bytes)
            } else {
                bytes = Array((prompt ?? "").utf8)
            }
            let ids = tokenizer.encode(bytes, addSpecial: !noSpecial, parseSpecial: parseSpecial)
            if common.json {
                var o = JSONObject([("tokenizer", .string(tokenizer.kind.rawValue)), ("count", JSONValue(ids.count)),
                                    ("ids", .array(ids.map { JSONValue(Int($0)) }))])
                if let p = tokenizer.preTokenizer { o["pre"] = .string(p.name) }
                if pieces {
                    o["pieces"] = .array(ids.map { .string(String(decoding: tokenizer.bytes(of: $0), as: UTF8.self)) })
                }
                print(JSONValue.object(o).serialized(pretty: false))
            } else if pieces {
                for id in ids {
                    let piece = String(decoding: tokenizer.bytes(of: id), as: UTF8.self)
                    print("\(id)\t\(piece.debugDescription)")
                }
            } else {
                print(ids.map(String.init).joined(separator: " "))
            }
        }
    }
}

/// Opens the tokenizer of a GGUF file or a tokenizer.json.
enum TokenizerLoader {
    static func load(_ path: String) throws -> Tokenizer {
        if path.hasSuffix(".json") {
            let file = try MappedFile(path: path)
            return try Tokenizer(huggingFace: try JSONParser.parse(file.bytes, field: path), path: path)
        }
        let model = try ModelFile.open(path)
        return try load(model)
    }

    /// The tokenizer of an open model: GGUF metadata, or a folder's tokenizer.json.
    static func load(_ model: ModelFile) throws -> Tokenizer {
        switch model.storage {
        case .gguf(let g): return try Tokenizer(gguf: g)
        case .huggingFaceFolder(let d):
            if let keys = try FolderTokenizer.sentencePieceMetadata(d) {
                return try Tokenizer(metadata: keys, path: d.path + "/tokenizer.model")
            }
            let json = d.path + "/tokenizer.json"
            let file = try MappedFile(path: json)
            return try Tokenizer(huggingFace: try JSONParser.parse(file.bytes, field: json), path: json)
        case .safetensors:
            throw ModelError(.unsupportedTokenizer, field: "tokenizer",
                             "\(model.path) holds no tokenizer; give its tokenizer.json or its folder", path: model.path)
        }
    }
}
