//! `pattern_pager`: the pager guide's first example, whole. It serves one object, `pattern`,
//! 64 pages whose every 8-byte word holds its own offset in the object times 3, computed
//! when the kernel asks (`libipc::pager::kit`), in clusters of 8 pages. It registers its
//! port with the name service it is given under `pattern_pager`; clients `open("pattern")`
//! there (`memory_object_server`) and map the right they get with `vm_map`.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
libipc::program!(main);

/// The object: 64 pages of computed words.
#[cfg(target_os = "none")]
struct Pattern;

#[cfg(target_os = "none")]
impl libipc::pager::kit::Backing for Pattern {
    type Object = ();

    fn open(&mut self, name: &str) -> Option<((), u64)> {
        (name == "pattern").then_some(((), 64 * libipc::abi::syscall::PAGE_SIZE))
    }

    fn read(
        &mut self,
        _object: &mut (),
        offset: u64,
        pages: &mut [u8],
    ) -> Result<(), libipc::pager::PagerError> {
        for (i, word) in pages.chunks_exact_mut(8).enumerate() {
            let at = offset + 8 * i as u64;
            word.copy_from_slice(&(at * 3).to_le_bytes());
        }
        Ok(())
    }

    fn cluster_pages(&self, _object: &()) -> u32 {
        8
    }
}

#[cfg(target_os = "none")]
fn main(args: libipc::rt::StartArgs) -> i32 {
    let Some(mut names) = libipc::names::Client::from_start_args(&args) else {
        libipc::println!("pattern_pager: no name service");
        return 1;
    };
    let Ok(mut pager) = libipc::pager::kit::Pager::new(Pattern) else {
        return 1;
    };
    if let Err(error) = pager.register(&mut names, "pattern_pager") {
        libipc::println!("pattern_pager: cannot register: {error}");
        return 1;
    }
    let served = pager.serve();
    libipc::println!("pattern_pager: stopped: {served:?}");
    1
}

#[cfg(not(target_os = "none"))]
fn main() {}
