pragma solidity ^0.6.0;

contract Dice {
    event Rolled(address player, uint256 value);

    receive() external payable {}

    function roll(uint256 bet) external payable {
        require(msg.value == 0.1 ether, "stake");
        require(bet >= 1 && bet <= 6, "face");
        uint256 value = uint256(blockhash(block.number - 1)) % 6 + 1; // expect: bad-randomness
        emit Rolled(msg.sender, value);
        if (value == bet) {
            msg.sender.transfer(0.5 ether);
        }
    }
}
