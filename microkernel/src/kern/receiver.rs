//! Kernel receivers: every port whose receive right the kernel holds and that takes messages
//! (device master, devices, memory-object control ports, pagers' answers) is served through
//! one trait, split as seL4 splits its invocations.
//!
//! [`KernelReceiver::decode`] checks a message against a read-only view of the state it
//! needs and changes nothing: it runs before the send moves a single right, and everything
//! wrong with a message is found there, in a pure function the host tests call. Then the send
//! moves the rights and [`KernelReceiver::invoke`] carries the decoded call out, or answers
//! its refusal: it has nothing left to check, and the only thing that can still go wrong is
//! running out of kernel memory midway, which is itself an answer. A port received by a
//! task has a message queue instead; `mach_msg` asks [`Kernel::decode_for_kernel`] which
//! kind a destination is, so a new kind of kernel receiver is one impl and one arm there.

use crate::device::requests::{DeviceCall, DevicePort, DeviceRefusal};
use crate::device::DeviceIndex;
use crate::ipc::message::Parts;
use crate::ipc::port::{KernelObject, PortId};
use crate::ipc::request::Request;
use crate::kern::kernel::Kernel;
use crate::kern::memory::pager::{AnswerPort, ControlPort};
use crate::kern::memory::pager_requests::{AnswerCall, AnswerRefusal, ControlCall};
use libipc::pager::ControlError;

/// A port the kernel receives on and serves in the sender's own call.
pub trait KernelReceiver: Copy {
    /// What decoding reads of the kernel's state.
    type View<'k>;
    /// A request checked in full: all `invoke` needs to carry it out.
    type Call;
    /// Why a request is not carried out: `invoke` answers with it.
    type Refusal;

    /// The state `decode` reads, borrowed from the kernel.
    fn view(self, kernel: &Kernel) -> Self::View<'_>;

    /// Checks `request` against `view`; changes nothing.
    fn decode(
        self,
        view: &Self::View<'_>,
        request: &Request<'_>,
    ) -> Result<Self::Call, Self::Refusal>;

    /// Carries out a decoded call, or answers its refusal, on `port` (this receiver's). Uses
    /// up the message's rights and memory (`parts`), whatever happens.
    fn invoke(
        self,
        kernel: &mut Kernel,
        port: PortId,
        decoded: Result<Self::Call, Self::Refusal>,
        parts: Parts<'_>,
    );
}

/// A message to a kernel receiver, decoded by its receiver.
pub enum Decoded {
    Device(DevicePort, Result<DeviceCall, DeviceRefusal>),
    Control(ControlPort, Result<ControlCall, ControlError>),
    Answer(AnswerPort, Result<AnswerCall, AnswerRefusal>),
}

impl KernelObject {
    /// Whether messages may be sent to this object's port (tasks and the host are named in
    /// system calls instead).
    pub fn takes_messages(self) -> bool {
        !matches!(
            self,
            KernelObject::Task(_) | KernelObject::ExitedTask(_) | KernelObject::Host
        )
    }
}

/// Decodes `request` for `receiver`, reading the kernel through its view.
fn decode<R: KernelReceiver>(
    receiver: R,
    kernel: &Kernel,
    request: &Request<'_>,
) -> Result<R::Call, R::Refusal> {
    receiver.decode(&receiver.view(kernel), request)
}

impl Kernel {
    /// Decodes `request` for kernel object `object`'s receiver; `None` if the object takes
    /// no messages. Changes nothing.
    pub(super) fn decode_for_kernel(
        &self,
        object: KernelObject,
        request: &Request<'_>,
    ) -> Option<Decoded> {
        Some(match object {
            KernelObject::DeviceMaster => {
                let r = DevicePort::Master;
                Decoded::Device(r, decode(r, self, request))
            }
            KernelObject::Device(index) => {
                let r = DevicePort::Device(DeviceIndex(index));
                Decoded::Device(r, decode(r, self, request))
            }
            KernelObject::MemoryControl(object) => {
                let r = ControlPort(object);
                Decoded::Control(r, decode(r, self, request))
            }
            KernelObject::PagerReply {
                object,
                offset,
                kind,
            } => {
                let r = AnswerPort {
                    object,
                    offset,
                    kind,
                };
                Decoded::Answer(r, decode(r, self, request))
            }
            KernelObject::Task(_) | KernelObject::ExitedTask(_) | KernelObject::Host => {
                return None
            }
        })
    }

    /// Carries out (or answers the refusal of) a message decoded for the kernel object of
    /// `port`; the message's rights have moved into `parts`.
    pub(super) fn invoke_kernel(&mut self, port: PortId, decoded: Decoded, parts: Parts<'_>) {
        match decoded {
            Decoded::Device(r, d) => r.invoke(self, port, d, parts),
            Decoded::Control(r, d) => r.invoke(self, port, d, parts),
            Decoded::Answer(r, d) => r.invoke(self, port, d, parts),
        }
    }

    /// Lets go of what is left of a message a kernel receiver has used: its rights and
    /// out-of-line memory.
    pub(crate) fn release_parts(&mut self, parts: &mut Parts<'_>) {
        for right in parts.rights.iter_mut().filter_map(Option::take) {
            self.release(right);
        }
        for copy in parts.memory.iter_mut().filter_map(Option::take) {
            copy.release(self.vm.objects_mut());
        }
    }
}
