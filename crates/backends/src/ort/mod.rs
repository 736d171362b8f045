//! ONNX Runtime through the `ort` crate, loaded at run time (`libonnxruntime.so` is not
//! linked: the build downloads nothing, and a binary without the library still runs tract).
//!
//! ONNX Runtime enforces the input shape a model declares (YuNet declares 1x3x640x640), so
//! a model asked for at another shape is edited in memory before its session is built:
//! its input's height and width become symbolic, and the intermediate and output shapes are
//! dropped for ORT to infer. ORT plans each shape itself, so one pool of sessions per model
//! file serves every shape it is loaded at (the detector's canvases); the models returned
//! for each shape share it.

mod shape;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, TryLockError};

use ort::environment::Environment;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::TensorRef;

use crate::{Backend, BackendError, Model, Tensor};

/// Where the ONNX Runtime library is looked for when no path is given: the dynamic
/// loader's search (LD_LIBRARY_PATH, /etc/ld.so.conf, /usr/lib ...).
pub const DEFAULT_ORT_LIBRARY: &str = "libonnxruntime.so";

#[derive(Debug, Clone)]
pub struct OrtOptions {
    /// The `libonnxruntime` shared library; `None`: [`DEFAULT_ORT_LIBRARY`].
    pub library: Option<PathBuf>,
    /// Threads inside one model run. facelive runs requests in parallel, so 1 by default.
    pub intra_threads: usize,
    /// Sessions per model: runs of one model that can go at once. ORT's Rust API runs a
    /// session through `&mut`, so concurrent requests need a session each.
    pub sessions: usize,
}

impl Default for OrtOptions {
    fn default() -> Self {
        Self {
            library: None,
            intra_threads: 1,
            sessions: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// A model file, whether its input was made symbolic, and the inner tensors it returns.
type PoolKey = (PathBuf, bool, Vec<String>);

pub struct OrtBackend {
    env: Environment,
    opts: OrtOptions,
    /// Session pools already built, by model file, whether its input is symbolic and the
    /// inner tensors it also returns.
    pools: Mutex<HashMap<PoolKey, Arc<Pool>>>,
}

impl OrtBackend {
    /// Loads the ONNX Runtime library and creates its environment (once per process: the
    /// library stays loaded).
    pub fn new(opts: OrtOptions) -> Result<Self, BackendError> {
        let lib = opts
            .library
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_ORT_LIBRARY));
        let unavailable = |reason: String| BackendError::EngineUnavailable {
            engine: "ort",
            reason: format!(
                "cannot load ONNX Runtime from {}: {reason} (set ORT_DYLIB_PATH or --ort-library \
                 to libonnxruntime.so, or use --backend tract)",
                lib.display()
            ),
        };
        let env = ort::init_from(&lib)
            .map_err(|e| unavailable(e.to_string()))?
            .with_name("facelive")
            .build()
            .map_err(|e| unavailable(e.to_string()))?;
        if opts.intra_threads == 0 || opts.sessions == 0 {
            return Err(unavailable(
                "intra-op threads and sessions must be >= 1".into(),
            ));
        }
        Ok(Self {
            env,
            opts,
            pools: Mutex::new(HashMap::new()),
        })
    }

    fn session(&self, model: &[u8], path: &Path) -> Result<Session, BackendError> {
        let load_err = |reason: String| BackendError::Load {
            path: path.display().to_string(),
            reason,
        };
        let err = |e: ort::Error<_>| load_err(e.to_string());
        Session::builder(&self.env)
            .map_err(|e| load_err(e.to_string()))?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(err)?
            .with_intra_threads(self.opts.intra_threads)
            .map_err(err)?
            .with_inter_threads(1)
            .map_err(err)?
            .commit_from_memory(model)
            .map_err(|e| load_err(e.to_string()))
    }
}

impl Backend for OrtBackend {
    fn name(&self) -> &'static str {
        "ort"
    }

    fn load_with_outputs(
        &self,
        path: &Path,
        input_shape: &[usize],
        extra_outputs: &[String],
    ) -> Result<Arc<dyn Model>, BackendError> {
        let load_err = |reason: String| BackendError::Load {
            path: path.display().to_string(),
            reason,
        };
        let bytes = std::fs::read(path).map_err(|e| load_err(e.to_string()))?;
        let symbolic = shape::declared_input_shape(&bytes).map_err(load_err)? != input_shape;
        let key = (path.to_path_buf(), symbolic, extra_outputs.to_vec());
        let mut pools = self.pools.lock().expect("pool cache lock");
        let pool = match pools.get(&key) {
            Some(p) => p.clone(),
            None => {
                let model = match symbolic {
                    true => shape::with_symbolic_input(&bytes).map_err(load_err)?,
                    false => bytes,
                };
                let model = match extra_outputs.is_empty() {
                    true => model,
                    false => crate::onnx::with_outputs(&model, extra_outputs).map_err(load_err)?,
                };
                let pool = Arc::new(self.pool(&model, path)?);
                pools.insert(key, pool.clone());
                pool
            }
        };
        Ok(Arc::new(OrtModel {
            pool,
            input_shape: input_shape.to_vec(),
        }))
    }
}

impl OrtBackend {
    fn pool(&self, model: &[u8], path: &Path) -> Result<Pool, BackendError> {
        let sessions = (0..self.opts.sessions)
            .map(|_| self.session(model, path).map(Mutex::new))
            .collect::<Result<Vec<_>, _>>()?;
        let first = sessions[0].lock().expect("fresh session");
        let input_name = first.inputs()[0].name().to_string();
        let output_names = first
            .outputs()
            .iter()
            .map(|o| o.name().to_string())
            .collect();
        drop(first);
        Ok(Pool {
            sessions,
            next: AtomicUsize::new(0),
            input_name,
            output_names,
        })
    }
}

/// Sessions of one model: runs that can go at once.
struct Pool {
    sessions: Vec<Mutex<Session>>,
    /// Where a run waits when every session is busy, in turn, so waiters spread out.
    next: AtomicUsize,
    input_name: String,
    output_names: Vec<String>,
}

struct OrtModel {
    pool: Arc<Pool>,
    input_shape: Vec<usize>,
}

impl Pool {
    /// A free session if there is one, else wait for one, taking turns.
    fn with_session<T>(&self, f: impl FnOnce(&mut Session) -> T) -> T {
        for s in &self.sessions {
            match s.try_lock() {
                Ok(mut g) => return f(&mut g),
                Err(TryLockError::Poisoned(p)) => return f(&mut p.into_inner()),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.sessions.len();
        let mut g = self.sessions[i].lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }
}

impl OrtModel {
    fn run_on(&self, session: &mut Session, input: &Tensor) -> Result<Vec<Tensor>, BackendError> {
        let run_err = |e: ort::Error| BackendError::Run(e.to_string());
        let value = TensorRef::from_array_view((input.shape.clone(), input.data.as_slice()))
            .map_err(run_err)?;
        let outputs = session
            .run(ort::inputs![self.pool.input_name.as_str() => value])
            .map_err(run_err)?;
        self.pool
            .output_names
            .iter()
            .map(|name| {
                let (shape, data) = outputs[name.as_str()]
                    .try_extract_tensor::<f32>()
                    .map_err(run_err)?;
                Ok(Tensor {
                    shape: shape.iter().map(|&d| d as usize).collect(),
                    data: data.to_vec(),
                })
            })
            .collect()
    }
}

impl Model for OrtModel {
    fn input_shape(&self) -> &[usize] {
        &self.input_shape
    }

    fn output_names(&self) -> &[String] {
        &self.pool.output_names
    }

    fn run(&self, input: Tensor) -> Result<Vec<Tensor>, BackendError> {
        if input.shape != self.input_shape {
            return Err(BackendError::Shape(format!(
                "plan expects {:?}, got {:?}",
                self.input_shape, input.shape
            )));
        }
        self.pool
            .with_session(|session| self.run_on(session, &input))
    }

    /// ORT sets a shape up on its first run in each session: warm every session.
    fn warm_up(&self) -> Result<(), BackendError> {
        let n = self.input_shape.iter().product();
        let zeros = Tensor::new(self.input_shape.clone(), vec![0.0; n])?;
        for s in &self.pool.sessions {
            let mut session = s.lock().unwrap_or_else(|p| p.into_inner());
            self.run_on(&mut session, &zeros)?;
        }
        Ok(())
    }
}
