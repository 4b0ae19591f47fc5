// SPDX-License-Identifier: MIT
pragma solidity ^0.8.18;

// prevrandao is known to the proposer before the block is published.
contract Raffle {
    address[] public entrants;

    function enter() external payable {
        require(msg.value == 1 ether, "ticket");
        entrants.push(msg.sender);
    }

    function pick() external {
        require(entrants.length >= 10, "too few");
        uint256 seed = uint256(keccak256(abi.encodePacked(block.prevrandao, entrants.length))); // expect: bad-randomness
        address winner = entrants[seed % entrants.length];
        delete entrants;
        payable(winner).transfer(address(this).balance);
    }
}
