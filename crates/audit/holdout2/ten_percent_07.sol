pragma solidity ^0.7.0;

contract TenPercent {
    receive() external payable {}

    function gamble() external payable {
        require(msg.value == 0.1 ether, "stake");
        require(uint256(keccak256(abi.encodePacked(block.timestamp, msg.sender))) % 100 < 10, "lost"); // expect: bad-randomness
        msg.sender.transfer(1 ether);
    }
}
