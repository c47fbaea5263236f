//! The `verbs!` macro: one implementation behind each store verb's two Python faces.

/// Emits each store verb twice over the same async core call: a blocking method (GIL released
/// while the runtime drives the future) and its `*_async` twin (the future as an awaitable).
/// `prepare` converts the Python arguments under the GIL, before either face runs; `extra` holds
/// the methods that are not verbs (one `#[pymethods]` block per class). The class holds the core
/// store as `store: Arc<Core>` and the process that made it as `pid` (a forked child must not
/// touch the parent's connections).
macro_rules! verbs {
    ($class:ident($core:ty); extra { $($extra:tt)* } $(
        $(#[$attr:meta])*
        fn $name:ident / $name_async:ident ($($arg:ident: $ty:ty),*)
            prepare { $($prep:stmt;)* }
            |$s:ident| $call:expr;
    )*) => {
        impl $class {
            fn block<'py, T, F, Fut>(&self, py: Python<'py>, job: F) -> PyResult<Bound<'py, PyAny>>
            where
                F: FnOnce(Arc<$core>) -> Fut + Send,
                Fut: std::future::Future<Output = dataknobs_core::Result<T>> + Send,
                T: $crate::convert::ToPython + Send,
            {
                $crate::runtime::check_pid(self.pid).map_err(|e| e.into_pyerr(py))?;
                let rt = $crate::runtime::runtime().map_err(|e| e.into_pyerr(py))?;
                let store = Arc::clone(&self.store);
                $crate::runtime::run_detached(py, move || Ok(rt.block_on(job(store))?))?
                    .to_python(py)
            }

            fn awaitable<'py, T, F, Fut>(&self, py: Python<'py>, job: F) -> PyResult<Bound<'py, PyAny>>
            where
                F: FnOnce(Arc<$core>) -> Fut + Send + 'static,
                Fut: std::future::Future<Output = dataknobs_core::Result<T>> + Send + 'static,
                T: $crate::convert::ToPython + Send + 'static,
            {
                $crate::runtime::check_pid(self.pid).map_err(|e| e.into_pyerr(py))?;
                let store = Arc::clone(&self.store);
                $crate::runtime::future_awaitable(py, async move { Ok(job(store).await?) })
            }
        }

        #[pymethods]
        impl $class {
            $($extra)*

            $(
                $(#[$attr])*
                fn $name<'py>(&self, py: Python<'py>, $($arg: $ty),*) -> PyResult<Bound<'py, PyAny>> {
                    $($prep;)*
                    self.block(py, move |$s| async move { $call })
                }

                $(#[$attr])*
                fn $name_async<'py>(&self, py: Python<'py>, $($arg: $ty),*) -> PyResult<Bound<'py, PyAny>> {
                    $($prep;)*
                    self.awaitable(py, move |$s| async move { $call })
                }
            )*
        }
    };
}

pub(crate) use verbs;
