//! Compiles proto/**/*.proto without a system protoc (protox), generates prost messages with the
//! proto3 JSON mapping (pbjson), and from the same descriptors emits, per service, its descriptor
//! (methods, types, streaming, access, mutates), a typed handler trait and a dispatcher. Routes,
//! HTTP paths and NATS subjects all derive from what this writes; nothing is a hand-kept list.

use std::collections::BTreeMap;
use std::error::Error;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use prost_reflect::{DescriptorPool, Value};

#[path = "build/event_types.rs"]
mod event_types;

fn main() -> Result<(), Box<dyn Error>> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let root = manifest.join("proto");
    println!("cargo:rerun-if-changed=proto");

    let mut files = Vec::new();
    collect(&root, &mut files)?;
    files.sort();
    let rel: Vec<PathBuf> = files
        .iter()
        .map(|f| f.strip_prefix(&root).map(Path::to_path_buf))
        .collect::<Result<_, _>>()?;

    let mut compiler = protox::Compiler::new([&root])?;
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(&rel)?;
    let pool = compiler.descriptor_pool();
    let fds_bytes = compiler.encode_file_descriptor_set();
    std::fs::write(out.join("descriptor.bin"), &fds_bytes)?;

    prost_build::Config::new()
        .compile_well_known_types()
        .extern_path(".google.protobuf", "::pbjson_types")
        .compile_fds(compiler.file_descriptor_set())?;
    pbjson_build::Builder::new()
        .register_descriptors(&fds_bytes)?
        .build(&[".aicore"])?;

    std::fs::write(out.join("aicore.rs"), generate(&pool)?)?;
    Ok(())
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
    Ok(())
}

const KEYWORDS: &[&str] = &[
    "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for",
    "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return",
    "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where", "while",
    "async", "await", "dyn", "abstract", "become", "box", "do", "final", "macro", "override",
    "priv", "typeof", "unsized", "virtual", "yield", "try", "gen",
];

fn snake(name: &str) -> String {
    let mut s = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                s.push('_');
            }
            s.push(c.to_ascii_lowercase());
        } else {
            s.push(c);
        }
    }
    s
}

fn ident(name: &str) -> String {
    if KEYWORDS.contains(&name) {
        format!("r#{name}")
    } else {
        name.to_owned()
    }
}

/// `.aicore.state.v1.GetRequest` seen from inside module `aicore::state::v1`.
fn rust_type(full: &str) -> String {
    let parts: Vec<&str> = full.split('.').collect();
    let (ty, pkg) = parts
        .split_last()
        .map(|(t, p)| (*t, p.to_vec()))
        .unwrap_or((full, vec![]));
    format!("crate::{}::{}", pkg.join("::"), ty)
}

fn generate(pool: &DescriptorPool) -> Result<String, Box<dyn Error>> {
    let access_ext = pool
        .get_extension_by_name("aicore.options.v1.access")
        .ok_or("aicore.options.v1.access extension missing")?;
    let mutates_ext = pool
        .get_extension_by_name("aicore.options.v1.mutates")
        .ok_or("aicore.options.v1.mutates extension missing")?;
    let keys_itself_ext = pool
        .get_extension_by_name("aicore.options.v1.keys_itself")
        .ok_or("aicore.options.v1.keys_itself extension missing")?;
    let calls_ext = pool
        .get_extension_by_name("aicore.options.v1.calls")
        .ok_or("aicore.options.v1.calls extension missing")?;
    let priority_ext = pool
        .get_extension_by_name("aicore.options.v1.priority")
        .ok_or("aicore.options.v1.priority extension missing")?;
    let rate_class_ext = pool
        .get_extension_by_name("aicore.options.v1.rate_class")
        .ok_or("aicore.options.v1.rate_class extension missing")?;
    let method_rate_class_ext = pool
        .get_extension_by_name("aicore.options.v1.method_rate_class")
        .ok_or("aicore.options.v1.method_rate_class extension missing")?;

    // package -> (services in that package)
    let mut packages: BTreeMap<String, Vec<prost_reflect::ServiceDescriptor>> = BTreeMap::new();
    for file in pool.files() {
        if file.package_name().starts_with("aicore.") {
            packages.entry(file.package_name().to_owned()).or_default();
        }
    }
    let mut services: Vec<prost_reflect::ServiceDescriptor> = pool
        .services()
        .filter(|s| s.package_name().starts_with("aicore."))
        .collect();
    services.sort_by(|a, b| a.full_name().cmp(b.full_name()));
    for s in &services {
        packages
            .entry(s.package_name().to_owned())
            .or_default()
            .push(s.clone());
    }

    let calls = declared_calls(&services, &calls_ext)?;

    let mut code = String::new();
    writeln!(
        code,
        "// @generated by proto/build.rs from the .proto files. Do not edit."
    )?;
    writeln!(code, "/// Every service, sorted by full name.")?;
    writeln!(code, "pub static SERVICES: &[crate::ServiceDesc] = &[")?;
    for (si, s) in services.iter().enumerate() {
        let short = s
            .package_name()
            .split('.')
            .nth(1)
            .ok_or("package without a service segment")?;
        let priority = match s.options().get_extension(&priority_ext).as_ref() {
            Value::EnumNumber(1) => "Low",
            Value::EnumNumber(2) => "High",
            _ => "Normal",
        };
        let service_class = s.options().get_extension(&rate_class_ext).as_ref().clone();
        writeln!(
            code,
            "  crate::ServiceDesc {{ index: {si}, short: {short:?}, package: {:?}, name: {:?}, full_name: {:?}, doc: {:?}, calls: &{:?}, priority: crate::Priority::{priority}, methods: &[",
            s.package_name(),
            s.name(),
            s.full_name(),
            comment(s.parent_file().file_descriptor_proto(), s.path()),
            calls[si],
        )?;
        for (mi, m) in s.methods().enumerate() {
            if m.is_client_streaming() {
                return Err(format!("{}: client streaming is not supported", m.full_name()).into());
            }
            let opts = m.options();
            let access = match opts.get_extension(&access_ext).as_ref() {
                Value::EnumNumber(1) => "Public",
                Value::EnumNumber(2) => "Service",
                Value::EnumNumber(3) => "Admin",
                _ => "Player",
            };
            let mutates = matches!(opts.get_extension(&mutates_ext).as_ref(), Value::Bool(true));
            let keys_itself = matches!(
                opts.get_extension(&keys_itself_ext).as_ref(),
                Value::Bool(true)
            );
            // The method's own class if it names one, else its service's.
            let class = match opts.get_extension(&method_rate_class_ext).as_ref() {
                Value::EnumNumber(0) => service_class.clone(),
                other => other.clone(),
            };
            let rate_class = match class {
                Value::EnumNumber(1) => "Auth",
                Value::EnumNumber(2) => "Llm",
                Value::EnumNumber(3) => "Query",
                _ => "Default",
            };
            writeln!(
                code,
                "    crate::MethodDesc {{ service_index: {si}, index: {mi}, service: {short:?}, name: {:?}, snake: {:?}, path: {:?}, input_type: {:?}, output_type: {:?}, server_streaming: {}, access: crate::Access::{access}, mutates: {mutates}, keys_itself: {keys_itself}, rate_class: crate::RateClass::{rate_class}, transcode: crate::Transcode {{ json_to_proto: crate::codec::json_to_proto::<{}>, proto_to_json: crate::codec::proto_to_json::<{}> }} }},",
                m.name(),
                snake(m.name()),
                format!("/{}/{}", s.full_name(), m.name()),
                m.input().full_name(),
                m.output().full_name(),
                m.is_server_streaming(),
                rust_type(m.input().full_name()),
                rust_type(m.output().full_name()),
            )?;
        }
        writeln!(code, "  ] }},")?;
    }
    writeln!(code, "];")?;
    registry_code(&mut code, &services)?;
    event_types::code(&mut code, pool)?;
    writeln!(
        code,
        "/// Every method's descriptor by service and name: `rpc::state::GET.path` is `/aicore.state.v1.StateService/Get`."
    )?;
    writeln!(code, "pub mod rpc {{")?;
    for s in &services {
        let short = short_of(s)?;
        writeln!(code, "  /// `{}`", s.full_name())?;
        writeln!(
            code,
            "  pub use crate::aicore::{}::{}::methods as {};",
            ident(short),
            s.package_name()
                .split('.')
                .nth(2)
                .ok_or("package without a version")?,
            ident(short)
        )?;
    }
    writeln!(code, "}}")?;

    // The module tree: one module per package, holding prost's and pbjson's output and the
    // service's handler trait and dispatcher.
    let mut tree: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for pkg in packages.keys() {
        let parts: Vec<&str> = pkg.split('.').collect();
        if parts.len() != 3 {
            return Err(format!("package {pkg} is not aicore.<svc>.<version>").into());
        }
        tree.entry(parts[1].to_owned())
            .or_default()
            .entry(parts[2].to_owned())
            .or_default()
            .push(pkg.clone());
    }
    writeln!(code, "pub mod aicore {{")?;
    for (svc, versions) in &tree {
        writeln!(code, "pub mod {} {{", ident(svc))?;
        for (ver, pkgs) in versions {
            writeln!(code, "#[allow(clippy::all, missing_docs)] pub mod {ver} {{")?;
            for pkg in pkgs {
                writeln!(code, "include!(concat!(env!(\"OUT_DIR\"), \"/{pkg}.rs\"));")?;
                writeln!(
                    code,
                    "include!(concat!(env!(\"OUT_DIR\"), \"/{pkg}.serde.rs\"));"
                )?;
                for s in &packages[pkg] {
                    let si = services
                        .iter()
                        .position(|x| x.full_name() == s.full_name())
                        .ok_or("service lost")?;
                    service_code(&mut code, s, si)?;
                }
            }
            writeln!(code, "}}")?;
        }
        writeln!(code, "}}")?;
    }
    writeln!(code, "}}")?;
    Ok(code)
}

/// `Registry<T>`: one field per service, so a list of every service (the handlers a process
/// hosts) is a struct literal and a service left out is a compile error.
fn registry_code(
    code: &mut String,
    services: &[prost_reflect::ServiceDescriptor],
) -> Result<(), Box<dyn Error>> {
    writeln!(
        code,
        "/// One `T` per service, by short name: a list of every service that the compiler checks is whole."
    )?;
    writeln!(code, "#[derive(Debug, Clone)] pub struct Registry<T> {{")?;
    for s in services {
        writeln!(code, "  /// `{}`", s.full_name())?;
        writeln!(code, "  pub {}: T,", ident(short_of(s)?))?;
    }
    writeln!(code, "}}")?;
    writeln!(code, "impl<T> Registry<T> {{")?;
    writeln!(
        code,
        "  /// The values in the order of [`SERVICES`] (the `i`th is service `i`'s)."
    )?;
    writeln!(
        code,
        "  pub fn into_vec(self) -> ::std::vec::Vec<T> {{ ::std::vec!["
    )?;
    for s in services {
        writeln!(code, "    self.{},", ident(short_of(s)?))?;
    }
    writeln!(code, "  ] }}")?;
    writeln!(code, "}}")?;
    Ok(())
}

/// Short name of a service: the second segment of its package.
fn short_of(s: &prost_reflect::ServiceDescriptor) -> Result<&str, Box<dyn Error>> {
    Ok(s.package_name()
        .split('.')
        .nth(1)
        .ok_or("package without a service segment")?)
}

/// Each service's `calls` option, checked: every entry names an existing method of another
/// service, once; and the graph has no cycle, so a call between services can never loop.
fn declared_calls(
    services: &[prost_reflect::ServiceDescriptor],
    ext: &prost_reflect::ExtensionDescriptor,
) -> Result<Vec<Vec<String>>, Box<dyn Error>> {
    let mut all = Vec::new();
    for s in services {
        let me = short_of(s)?;
        let mut list: Vec<String> = Vec::new();
        if let Value::List(values) = s.options().get_extension(ext).as_ref() {
            for v in values {
                let Value::String(entry) = v else {
                    return Err(format!("{}: calls entries are strings", s.full_name()).into());
                };
                let (svc, method) = entry.split_once('.').ok_or_else(|| {
                    format!(
                        "{}: calls entry {entry:?} is not <svc>.<Method>",
                        s.full_name()
                    )
                })?;
                if svc == me {
                    return Err(format!(
                        "{}: a service does not call itself ({entry})",
                        s.full_name()
                    )
                    .into());
                }
                let target = services
                    .iter()
                    .find(|t| short_of(t).is_ok_and(|t| t == svc))
                    .ok_or_else(|| {
                        format!("{}: calls {entry}: no service {svc:?}", s.full_name())
                    })?;
                if !target.methods().any(|m| m.name() == method) {
                    return Err(format!(
                        "{}: calls {entry}: {} has no method {method}",
                        s.full_name(),
                        target.full_name()
                    )
                    .into());
                }
                if list.contains(entry) {
                    return Err(format!("{}: calls {entry} twice", s.full_name()).into());
                }
                list.push(entry.clone());
            }
        }
        list.sort();
        all.push(list);
    }
    // Depth-first search over services; reaching a service on the current path is a cycle.
    let shorts: Vec<&str> = services.iter().map(short_of).collect::<Result<_, _>>()?;
    fn visit(
        i: usize,
        shorts: &[&str],
        calls: &[Vec<String>],
        state: &mut [u8],
        path: &mut Vec<usize>,
    ) -> Result<(), String> {
        if state[i] == 2 {
            return Ok(());
        }
        if state[i] == 1 {
            let from = path.iter().position(|&p| p == i).unwrap_or(0);
            let mut names: Vec<&str> = path[from..].iter().map(|&p| shorts[p]).collect();
            names.push(shorts[i]);
            return Err(format!(
                "the calls between services form a cycle: {}",
                names.join(" -> ")
            ));
        }
        state[i] = 1;
        path.push(i);
        for entry in &calls[i] {
            let svc = entry.split('.').next().unwrap_or("");
            if let Some(j) = shorts.iter().position(|s| *s == svc) {
                visit(j, shorts, calls, state, path)?;
            }
        }
        path.pop();
        state[i] = 2;
        Ok(())
    }
    let mut state = vec![0u8; services.len()];
    for i in 0..services.len() {
        visit(i, &shorts, &all, &mut state, &mut Vec::new())?;
    }
    Ok(all)
}

fn comment(file: &prost_reflect::prost_types::FileDescriptorProto, path: &[i32]) -> String {
    file.source_code_info
        .as_ref()
        .and_then(|info| info.location.iter().find(|l| l.path == path))
        .and_then(|l| l.leading_comments.clone())
        .map(|c| c.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn service_code(
    code: &mut String,
    s: &prost_reflect::ServiceDescriptor,
    si: usize,
) -> Result<(), Box<dyn Error>> {
    let name = s.name();
    let upper = snake(name).to_uppercase();
    writeln!(code, "/// The descriptor of `{}`.", s.full_name())?;
    writeln!(
        code,
        "pub const {upper}: &crate::ServiceDesc = &crate::SERVICES[{si}];"
    )?;
    writeln!(
        code,
        "/// Each method's descriptor by name (`methods::GET.path` is its Connect path), so callers name methods the compiler checks."
    )?;
    writeln!(code, "pub mod methods {{")?;
    for (mi, m) in s.methods().enumerate() {
        writeln!(
            code,
            "  /// `/{}/{}`\n  pub const {}: &crate::MethodDesc = &crate::SERVICES[{si}].methods[{mi}];",
            s.full_name(),
            m.name(),
            snake(m.name()).to_uppercase()
        )?;
    }
    writeln!(code, "}}")?;
    writeln!(
        code,
        "/// Implement this to serve `{}`; the generated dispatcher decodes requests and encodes replies.",
        s.full_name()
    )?;
    writeln!(code, "pub trait {name}Handler: Send + Sync + 'static {{")?;
    writeln!(code, "  /// Per-call context (principal, deadline, ...).")?;
    writeln!(code, "  type Context: Send + 'static;")?;
    writeln!(
        code,
        "  /// The status type; codec failures convert into it."
    )?;
    writeln!(
        code,
        "  type Error: From<crate::CodecError> + Send + 'static;"
    )?;
    for m in s.methods() {
        let input = rust_type(m.input().full_name());
        let output = rust_type(m.output().full_name());
        writeln!(code, "  /// `{}`", m.name())?;
        if m.is_server_streaming() {
            writeln!(
                code,
                "  fn {}(&self, ctx: Self::Context, req: {input}) -> impl ::core::future::Future<Output = Result<crate::BoxStream<Result<{output}, Self::Error>>, Self::Error>> + Send;",
                ident(&snake(m.name()))
            )?;
        } else {
            writeln!(
                code,
                "  fn {}(&self, ctx: Self::Context, req: {input}) -> impl ::core::future::Future<Output = Result<{output}, Self::Error>> + Send;",
                ident(&snake(m.name()))
            )?;
        }
    }
    writeln!(code, "}}")?;
    client_code(code, s)?;
    let disp = format!("{name}Dispatch");
    let fn_name = format!("{}_dispatch", snake(name));
    writeln!(
        code,
        "/// Wraps a handler as an object-safe dispatcher for the router."
    )?;
    writeln!(
        code,
        "pub fn {fn_name}<H: {name}Handler>(handler: ::std::sync::Arc<H>) -> ::std::sync::Arc<dyn crate::Dispatch<H::Context, H::Error>> {{ ::std::sync::Arc::new({disp}(handler)) }}"
    )?;
    writeln!(code, "struct {disp}<H>(::std::sync::Arc<H>);")?;
    writeln!(
        code,
        "impl<H: {name}Handler> crate::Dispatch<H::Context, H::Error> for {disp}<H> {{"
    )?;
    writeln!(
        code,
        "  fn descriptor(&self) -> &'static crate::ServiceDesc {{ {upper} }}"
    )?;
    writeln!(
        code,
        "  fn call(&self, ctx: H::Context, method: &'static crate::MethodDesc, codec: crate::Codec, body: ::bytes::Bytes) -> crate::BoxFuture<Result<crate::Encoded<H::Error>, H::Error>> {{"
    )?;
    writeln!(code, "    let h = ::std::sync::Arc::clone(&self.0);")?;
    writeln!(
        code,
        "    if method.service_index != {si} {{ return ::std::boxed::Box::pin(async move {{ Err(crate::CodecError::UnknownMethod(method.path).into()) }}); }}"
    )?;
    writeln!(code, "    match method.index {{")?;
    for (mi, m) in s.methods().enumerate() {
        let input = rust_type(m.input().full_name());
        let f = ident(&snake(m.name()));
        if m.is_server_streaming() {
            writeln!(
                code,
                "      {mi} => ::std::boxed::Box::pin(async move {{ let req: {input} = crate::codec::decode(codec, &body)?; let stream = h.{f}(ctx, req).await?; Ok(crate::Encoded::Stream(crate::codec::encode_stream(codec, stream))) }}),"
            )?;
        } else {
            writeln!(
                code,
                "      {mi} => ::std::boxed::Box::pin(async move {{ let req: {input} = crate::codec::decode(codec, &body)?; let resp = h.{f}(ctx, req).await?; Ok(crate::Encoded::Unary(crate::codec::encode(codec, &resp)?)) }}),"
            )?;
        }
    }
    writeln!(
        code,
        "      _ => ::std::boxed::Box::pin(async move {{ Err(crate::CodecError::UnknownMethod(method.path).into()) }}),"
    )?;
    writeln!(code, "    }}")?;
    writeln!(code, "  }}")?;
    writeln!(code, "}}")?;
    Ok(())
}

/// A typed client over any [`Transport`]: one method per RPC, encoding the request as protobuf
/// and decoding the reply, so a caller never touches bytes or paths.
fn client_code(
    code: &mut String,
    s: &prost_reflect::ServiceDescriptor,
) -> Result<(), Box<dyn Error>> {
    let name = s.name();
    let upper = snake(name).to_uppercase();
    writeln!(
        code,
        "/// A typed client of `{}`, over any transport (in services: the router).",
        s.full_name()
    )?;
    writeln!(code, "#[derive(Clone)] pub struct {name}Client<T>(pub T);")?;
    writeln!(
        code,
        "impl<T> ::std::fmt::Debug for {name}Client<T> {{ fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {{ f.write_str(\"{name}Client\") }} }}"
    )?;
    writeln!(code, "impl<T: crate::Transport> {name}Client<T> {{")?;
    for (mi, m) in s.methods().enumerate() {
        let input = rust_type(m.input().full_name());
        let output = rust_type(m.output().full_name());
        let f = ident(&snake(m.name()));
        writeln!(code, "  /// Calls `{}`.", m.name())?;
        if m.is_server_streaming() {
            writeln!(
                code,
                "  pub async fn {f}(&self, ctx: T::Context, req: {input}) -> Result<crate::BoxStream<Result<{output}, T::Error>>, T::Error> {{ let body = crate::codec::encode(crate::Codec::Proto, &req)?; let stream = self.0.stream(ctx, &{upper}.methods[{mi}], body).await?; Ok(::std::boxed::Box::pin(::futures_util::StreamExt::map(stream, |item| item.and_then(|bytes| Ok(crate::codec::decode::<{output}>(crate::Codec::Proto, &bytes)?))))) }}"
            )?;
        } else {
            writeln!(
                code,
                "  pub async fn {f}(&self, ctx: T::Context, req: {input}) -> Result<{output}, T::Error> {{ let body = crate::codec::encode(crate::Codec::Proto, &req)?; let bytes = self.0.unary(ctx, &{upper}.methods[{mi}], body).await?; Ok(crate::codec::decode(crate::Codec::Proto, &bytes)?) }}"
            )?;
        }
    }
    writeln!(code, "}}")?;
    Ok(())
}
