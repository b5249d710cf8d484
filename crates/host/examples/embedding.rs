//! The README's embedding example: bootstrap the runtime SO on device 0 of
//! a real Ascend machine and run one batch. Kept here so that the test
//! command compiles it; the runnable twin against the simulator is the
//! rustdoc example on `DeviceRunner`.

use simpler_host::{Cann, CannSource, DeviceRunner, Machine, Role, SoImage};

fn main() -> Result<(), simpler_host::Error> {
    // Real CANN from $ASCEND_HOME_PATH/lib64; CannSource::Simulator runs
    // the same code against the simulator, CannSource::Libraries names files.
    let cann = Cann::load(&CannSource::Toolkit)?;
    // Read, check (ELF machine, contract exports) and fingerprint once.
    let dispatcher = SoImage::from_path(
        "libsimpler_aicpu_dispatcher.so",
        Role::Dispatcher,
        Machine::AARCH64,
    )?;
    let runtime = SoImage::from_path("libsimpler_aicpu.so", Role::Runtime, Machine::AARCH64)?;

    // The first runner per (device, runtime SO) bootstraps; later ones reuse it.
    let mut runner = DeviceRunner::builder(&cann)
        .device(0)
        .threads(4)
        .dispatcher_image(dispatcher)
        .runtime_image(runtime)
        .build()?;

    let a = runner.upload(&[1.0f32, 2.0, 3.0, 4.0])?;
    let b = runner.upload(&[10.0f32, 20.0, 30.0, 40.0])?;
    let sum = runner.alloc(16)?;
    let mut batch = runner.batch();
    batch.add_f32(&sum, &a, &b)?;
    batch.run()?; // a failed task is Error::TasksFailed naming it
    assert_eq!(sum.to_vec::<f32>()?, [11.0, 22.0, 33.0, 44.0]);
    Ok(()) // dropping the runner frees its device memory and stream
}
